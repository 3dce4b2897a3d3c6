// Checks an audit trail in the browser, the way `jit audit verify` and
// `jit_core::trust::verify_export` do: every record's hash from its contents, the links between
// records, each signature by the function that writes that kind of record (ECDSA P-256 over
// SHA-256, with WebCrypto), chain heads, and signed checkpoints against the periods they cover.
// Returns the first break in words, or null when everything holds.

const enc = new TextEncoder();
export const GENESIS = "0".repeat(64);
const RECORD_TAG = "jit-audit-v1";
const SIGNED_RECORD_TAG = "jit-audit-record-v1\0";
const SIGNED_CHECKPOINT_TAG = "jit-audit-checkpoint-v1\0";
const CHECKPOINT_TAG = "jit-checkpoint-v1";
// A checkpoint naming its period's object in the audit bucket: the hash covers the object.
const ARCHIVED_CHECKPOINT_TAG = "jit-checkpoint-v2";
const PERIOD_TAG = "jit-audit-period-v1";

const AUTHORS = {
  REQUESTED: "intake", CANCELLED: "intake",
  AWAITING_REVIEW: "approver", AUTO_APPROVED: "approver", BREAK_GLASS_ACTIVATED: "approver",
  APPROVED: "approver", DENIED: "approver", POST_REVIEWED: "approver",
  EXTENSION_REQUESTED: "approver", EXTENSION_APPROVED: "approver", EXTENSION_DENIED: "approver",
  EXTENDED: "approver",
  SESSION_ISSUED: "issuer",
  TIMED_OUT: "sweeper", EXPIRED: "sweeper", REVOKED: "sweeper",
  REVOCATION_FALLBACK: "sweeper", REVOCATION_REPAIRED: "sweeper",
  ACTIVITY_COVERED: "sweeper",
};

function concat(parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// Length-prefixed fields (u32 big-endian), after a tag: the canonical encoding the hashes use.
function fields(tag, values) {
  const parts = [enc.encode(tag)];
  for (const v of values) {
    const bytes = enc.encode(String(v));
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, bytes.length);
    parts.push(len, bytes);
  }
  return concat(parts);
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function hexBytes(hex) {
  if (!/^([0-9a-f]{2})*$/.test(hex)) return enc.encode(hex);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function base64Bytes(text) {
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

// Byte order, as Rust's BTreeMap<String, _> sorts keys (the same as UTF-16 order for ASCII).
function byteOrder(a, b) {
  const x = enc.encode(a), y = enc.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

export async function recordHash(r) {
  const detail = r.detail || {};
  const keys = Object.keys(detail).sort(byteOrder);
  const values = [
    r.grant_id, r.seq, r.at, r.actor, r.action, r.from || "", r.to, keys.length,
  ];
  for (const k of keys) values.push(k, detail[k]);
  values.push(r.policy_hash || "", r.prev_hash);
  return sha256Hex(fields(RECORD_TAG, values));
}

export async function checkpointHash(c) {
  const values = [c.seq, c.period_start, c.period_end, c.count, c.digest, c.prev_hash];
  if (c.object) {
    values.push(c.object.key, c.object.version_id, c.object.sha256);
    return sha256Hex(fields(ARCHIVED_CHECKPOINT_TAG, values));
  }
  return sha256Hex(fields(CHECKPOINT_TAG, values));
}

async function periodDigest(records) {
  const sorted = [...records].sort((a, b) =>
    a.at - b.at || byteOrder(a.grant_id, b.grant_id) || a.seq - b.seq);
  const values = [];
  for (const r of sorted) values.push(r.grant_id, r.seq, r.hash);
  return { count: sorted.length, digest: await sha256Hex(fields(PERIOD_TAG, values)) };
}

const ACTIVITY_TAG = "jit-activity-v1";
const ACTIVITY_DIGEST_TAG = "jit-activity-digest-v1";

// One activity event's hash, as `Activity::hash` computes it: its fields length-prefixed
// (event id, kind, unix time, account, region, service, action, read-only, error code, the
// resource count and each resource, how many were dropped, source IP, user agent).
export async function activityHash(a) {
  const readOnly = a.read_only === true ? "true" : a.read_only === false ? "false" : "";
  const resources = a.resources || [];
  return sha256Hex(fields(ACTIVITY_TAG, [
    a.event_id, a.kind, a.time, a.account, a.region, a.service, a.action, readOnly,
    a.error_code || "", resources.length, ...resources, a.resources_dropped || 0,
    a.source_ip || "", a.user_agent || "",
  ]));
}

// The count and digest of events, as `activity_digest`: each id and hash in (time, id) order.
export async function activityDigest(events) {
  const sorted = [...events].sort((x, y) => x.time - y.time || byteOrder(x.event_id, y.event_id));
  const values = [];
  for (const e of sorted) values.push(e.event_id, await activityHash(e));
  return { count: sorted.length, digest: await sha256Hex(fields(ACTIVITY_DIGEST_TAG, values)) };
}

const storedBy = (e, through) => e.stored_at === undefined || e.stored_at === null || e.stored_at <= through;

// A grant's activity (every event kept) against its ACTIVITY_COVERED records, as
// `check_coverage` does; verify the records first (verifyTrail). Returns { problem, records,
// covered, notYetCovered }: a deleted, edited or slipped-in event is a problem; an event
// stored after the last record is only not yet covered.
export async function verifyActivity(records, events) {
  let covering = 0, covered = 0, last = null;
  for (const r of records.filter((r) => r.action === "ACTIVITY_COVERED")) {
    const d = r.detail || {};
    const through = Date.parse(d.activity_through) / 1000;
    if (!d.activity_digest || !/^[0-9]+$/.test(d.activity_count || "") || Number.isNaN(through)) {
      return { problem: `covering record ${r.seq} is malformed` };
    }
    const found = await activityDigest(events.filter((e) => storedBy(e, through)));
    if (String(found.count) !== d.activity_count || found.digest !== d.activity_digest) {
      return { problem: `covering record ${r.seq} signed ${d.activity_count} events stored up to ${d.activity_through}, but the activity holds ${found.count}${String(found.count) === d.activity_count ? " with another digest" : ""}: an event was deleted, edited or added` };
    }
    covering += 1;
    covered = found.count;
    last = through;
  }
  const notYetCovered = events.filter((e) => last === null || !storedBy(e, last)).length;
  return { problem: null, records: covering, covered, notYetCovered };
}

// A DER ECDSA signature (what KMS returns) as the r‖s pair WebCrypto takes.
function derToRaw(der) {
  let i = 0;
  const take = () => der[i++];
  if (take() !== 0x30) throw new Error("not a DER signature");
  let len = take();
  if (len & 0x80) i += len & 0x7f;
  const integer = () => {
    if (take() !== 0x02) throw new Error("not a DER signature");
    const n = take();
    let bytes = der.slice(i, i + n);
    i += n;
    while (bytes.length > 32 && bytes[0] === 0) bytes = bytes.slice(1);
    if (bytes.length > 32) throw new Error("not a P-256 signature");
    const out = new Uint8Array(32);
    out.set(bytes, 32 - bytes.length);
    return out;
  };
  return concat([integer(), integer()]);
}

// When a UUIDv7 grant id says the grant was created (unix seconds), or null.
function uuidv7Seconds(id) {
  const hex = id.replace(/-/g, "");
  if (!/^[0-9a-f]{32}$/i.test(hex) || hex[12] !== "7") return null;
  return Math.floor(parseInt(hex.slice(0, 12), 16) / 1000);
}

const keyRef = (id) => (id.startsWith("arn:") && id.includes(":kms:") ? id.split("/").pop() : id);

export async function keyRing(publicKeys) {
  const ring = new Map();
  for (const k of publicKeys || []) {
    const key = await crypto.subtle.importKey(
      "spki", base64Bytes(k.spki), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    ring.set(keyRef(k.key_id), { signer: k.signer, key });
  }
  return ring;
}

// Why `signature` is not `author`'s over `tag ‖ hash`, or null.
async function signatureProblem(ring, signature, author, tag, hash) {
  if (!signature) return "it is not signed";
  const entry = ring.get(keyRef(signature.key_id));
  if (!entry) return `it is signed with key ${signature.key_id}, which is not one of the functions' keys`;
  if (entry.signer !== signature.signer) {
    return `it claims the ${signature.signer} function's signature but the key is the ${entry.signer}'s`;
  }
  if (signature.signer !== author) return `it is signed by the ${signature.signer} function, but only the ${author} function writes it`;
  let ok = false;
  try {
    ok = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" }, entry.key,
      derToRaw(base64Bytes(signature.value)), concat([enc.encode(tag), hexBytes(hash)]));
  } catch (e) {
    return `its signature is malformed (${e.message})`;
  }
  return ok ? null : "its signature does not verify";
}

// One grant's records, in order from seq 1 (or from `first` for a partial range), against its
// head if known. Returns the head reached, or throws a message.
async function checkChain(grantId, records, ring, first) {
  let expected = first ? records[0]?.seq ?? 1 : 1;
  let prev = null;
  for (const r of records) {
    const where = `grant ${grantId}, record ${r.seq}`;
    if (r.grant_id !== grantId) throw `${where} belongs to grant ${r.grant_id}`;
    if (r.seq !== expected) throw `grant ${grantId}: expected record ${expected} but found record ${r.seq}`;
    if (expected === 1 && r.prev_hash !== GENESIS) throw `${where} does not start the chain`;
    if (prev && r.prev_hash !== prev.hash) throw `${where} does not link to record ${prev.seq}`;
    const computed = await recordHash(r);
    if (computed !== r.hash) throw `${where} was altered: its contents hash to ${computed}, not ${r.hash}`;
    const author = AUTHORS[r.action];
    if (!author) throw `${where} has an unknown action ${r.action}`;
    const problem = await signatureProblem(ring, r.signature, author, SIGNED_RECORD_TAG, r.hash);
    if (problem) throw `${where} (${r.action}): ${problem}`;
    prev = r;
    expected += 1;
  }
  return prev ? { seq: prev.seq, hash: prev.hash } : null;
}

// A grant's whole trail (GET /requests/{id}/audit): every record, linked from the first to the
// grant's head, each signed by its author. Returns null or the first break.
export async function verifyTrail(trail) {
  try {
    const ring = await keyRing(trail.keys);
    const head = await checkChain(trail.grant.id, trail.records, ring, false);
    const want = trail.grant.audit_head;
    if (!head || head.seq !== want.seq || head.hash !== want.hash) {
      return `the trail ends at record ${head ? head.seq : 0}, but the grant's head is record ${want.seq}`;
    }
    return null;
  } catch (e) {
    return typeof e === "string" ? e : e.message;
  }
}

// How long after a period closes its checkpoint may still be unsigned (two sweeps at the
// template's one-minute schedule), as `CheckpointPeriod::SIGNING_LAG_SECS`.
const SIGNING_LAG_SECS = 120;
const HOURLY = { length_secs: 3600, grace_secs: 300 };
const iso = (secs) => new Date(secs * 1000).toISOString().replace(".000Z", "Z");
const periodStart = (t, length) => Math.floor(t / length) * length;

// That the checkpoints (one unbroken chain, in order) cover every period of the range that
// was due to be signed when the export was made; a range starting before the chain's first
// checkpoint is covered from there. Throws the first period missing.
function checkCoverage(exp, cps, now) {
  const period = exp.checkpoint_period
    || (cps.length ? { length_secs: cps[0].period_end - cps[0].period_start, grace_secs: HOURLY.grace_secs } : HOURLY);
  const length = period.length_secs;
  if (!Number.isInteger(length) || length < 60 || length > 86400 || 86400 % length !== 0
      || !Number.isInteger(period.grace_secs) || period.grace_secs < 1) {
    throw `the export says the trail is cut into ${length} s periods: no deployment uses that`;
  }
  for (const c of cps) {
    if (c.period_start % length !== 0 || c.period_end - c.period_start !== length) {
      throw `checkpoint ${c.seq} covers ${iso(c.period_start)} to ${iso(c.period_end)}, which is not one of the export's ${length} s periods`;
    }
  }
  const asOf = Math.min(typeof exp.exported_at === "number" ? exp.exported_at : now, now);
  const dueEnd = periodStart(asOf - period.grace_secs - SIGNING_LAG_SECS, length);
  const from = typeof exp.from === "number" ? exp.from : cps[0]?.period_start;
  if (from === undefined) return;
  let start = periodStart(from, length);
  if (cps.length && cps[0].seq === 1) start = Math.max(start, cps[0].period_start);
  const end = typeof exp.to === "number" ? Math.min(periodStart(exp.to - 1, length) + length, dueEnd) : dueEnd;
  if (start >= end) return;
  const missing = (s) => `the period ${iso(s)} to ${iso(s + length)} closed before the export was made, but the export has no checkpoint for it: checkpoints were removed, or the sweeper has not signed it (it signs each period within ${period.grace_secs + SIGNING_LAG_SECS} seconds of its close)`;
  if (!cps.length) {
    throw `the export has no checkpoint, yet the period ${iso(start)} to ${iso(start + length)} closed before it was made: checkpoints were removed, or the range is before the trail's first checkpoint (a new deployment's sweeper signs its first within minutes)`;
  }
  if (cps[0].period_start > start) throw missing(start);
  const last = cps[cps.length - 1];
  if (last.period_end < end) throw missing(last.period_end);
}

// An export (pages of GET /audit merged: from, to, records, heads, checkpoints, keys,
// checkpoint_period, exported_at; and `activity`, each covered grant's kept events by grant
// id). With `options.keys`, signatures must verify under those keys (ones obtained
// separately) and not the ones the export carries; `options.now` is the verifier's clock in
// unix seconds. Returns { problem, grants, records, checkpoints, checkpointedFrom,
// checkpointedUntil, activityGrants, activityCovered, activityNotYetCovered,
// activityUnchecked }: a covered grant whose activity the export lacks is unchecked, as
// `jit audit verify` says.
export async function verifyExport(exp, options = {}) {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const summary = {
    problem: null, grants: 0, records: exp.records.length, checkpoints: exp.checkpoints.length,
    checkpointedFrom: null, checkpointedUntil: null,
    activityGrants: 0, activityCovered: 0, activityNotYetCovered: 0, activityUnchecked: 0,
  };
  try {
    const ring = await keyRing(options.keys || exp.keys);
    const byGrant = new Map();
    for (const r of exp.records) {
      if (!byGrant.has(r.grant_id)) byGrant.set(r.grant_id, []);
      byGrant.get(r.grant_id).push(r);
    }
    summary.grants = byGrant.size;
    const heads = new Map(exp.heads.map((h) => [h.grant_id, h.head]));
    for (const [grantId, records] of byGrant) {
      records.sort((a, b) => a.seq - b.seq);
      // A range may start mid-chain, but not for a grant created inside it.
      const created = uuidv7Seconds(grantId);
      if (records[0].seq !== 1 && created !== null && created >= exp.from && created < exp.to) {
        throw `grant ${grantId}: record 1 is missing (the grant was created inside the range)`;
      }
      const last = await checkChain(grantId, records, ring, true);
      const head = heads.get(grantId);
      if (!head) throw `grant ${grantId}: the export has no head for it`;
      if (last.seq > head.seq) throw `grant ${grantId}: record ${last.seq} is past its head (${head.seq})`;
      if (last.seq === head.seq && last.hash !== head.hash) throw `grant ${grantId}: its last record is not its head`;
    }
    const cps = [...exp.checkpoints].sort((a, b) => a.seq - b.seq);
    let prev = null;
    for (const c of cps) {
      const where = `checkpoint ${c.seq}`;
      const computed = await checkpointHash(c);
      if (computed !== c.hash) throw `${where} was altered`;
      const problem = await signatureProblem(ring, c.signature, "sweeper", SIGNED_CHECKPOINT_TAG, c.hash);
      if (problem) throw `${where}: ${problem}`;
      if (prev) {
        if (c.seq !== prev.seq + 1) throw `${where}: checkpoint ${prev.seq + 1} should come next: checkpoints were removed`;
        if (c.prev_hash !== prev.hash || c.period_start !== prev.period_end) {
          throw `${where} does not follow checkpoint ${prev.seq}: the chain of checkpoints was rewritten`;
        }
      } else if (c.seq === 1 && c.prev_hash !== GENESIS) {
        throw `${where}: the first checkpoint names a predecessor`;
      }
      if (c.period_start >= exp.from && c.period_end <= exp.to) {
        const inPeriod = exp.records.filter((r) => r.at >= c.period_start && r.at < c.period_end);
        const { count, digest } = await periodDigest(inPeriod);
        if (count !== c.count) {
          throw `the period from ${iso(c.period_start)} held ${c.count} audit records when ${where} was signed, but the export has ${count}: records or whole grants were removed or added`;
        }
        if (digest !== c.digest) throw `the records of ${where}'s period are not the ones it signed`;
      }
      prev = c;
    }
    checkCoverage(exp, cps, now);
    // The activity of each grant with a covering record, when the export carries it.
    for (const [grantId, records] of byGrant) {
      if (!records.some((r) => r.action === "ACTIVITY_COVERED")) continue;
      const events = (exp.activity || {})[grantId];
      if (!events) { summary.activityUnchecked += 1; continue; }
      const v = await verifyActivity(records, events);
      if (v.problem) throw `grant ${grantId}'s activity: ${v.problem}`;
      summary.activityGrants += 1;
      summary.activityCovered += v.covered;
      summary.activityNotYetCovered += v.notYetCovered;
    }
    if (cps.length) {
      summary.checkpointedFrom = cps[0].period_start;
      summary.checkpointedUntil = cps[cps.length - 1].period_end;
    }
  } catch (e) {
    summary.problem = typeof e === "string" ? e : e.message;
  }
  return summary;
}

// An export as saved: the page's own download (one JSON object) or `jit audit export`'s JSON
// Lines (range, key, checkpoint, head and record items). Throws what is wrong with it.
export function parseExport(text) {
  const trimmed = text.trim();
  let whole = null;
  try { whole = JSON.parse(trimmed); } catch { whole = null; }
  if (whole && Array.isArray(whole.records)) {
    return {
      from: whole.from, to: whole.to, records: whole.records, heads: whole.heads || [],
      checkpoints: whole.checkpoints || [], keys: whole.keys || [],
      checkpoint_period: whole.checkpoint_period, exported_at: whole.exported_at,
      activity: whole.activity || {},
    };
  }
  const exp = { from: null, to: null, records: [], heads: [], checkpoints: [], keys: [], activity: {} };
  trimmed.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let item;
    try { item = JSON.parse(line); } catch (e) { throw `line ${i + 1} is not JSON (${e.message})`; }
    const { type, ...rest } = item;
    if (type === "range") {
      Object.assign(exp, { from: rest.from, to: rest.to, checkpoint_period: rest.checkpoint_period ?? undefined, exported_at: rest.exported_at ?? undefined });
    } else if (type === "key") exp.keys.push(rest);
    else if (type === "checkpoint") exp.checkpoints.push(rest);
    else if (type === "head") exp.heads.push(rest);
    else if (type === "record") exp.records.push(rest);
    else if (type === "activity") exp.activity[rest.grant] = rest.events;
    else throw `line ${i + 1} is not an export item (type ${JSON.stringify(type)})`;
  });
  return exp;
}
