// The auditor's report of a verified export, as `jit report` builds it (jit_core::report,
// shared/core/src/report.rs): a row per grant with a record in the range, totals per target
// and per person, and the exceptions. The page has only the range's records: a grant begun
// before the range shows blanks for what came before, and refusals (in intake's log, not the
// table) are left to `jit report --refused`.

const who = (actor) => (actor.startsWith("user:") ? actor.slice(5) : "");

export const GRANT_COLUMNS = ["grant_id", "requester", "target", "reason", "ticket", "break_glass",
  "requested_at", "requested_secs", "extended_secs", "policies", "approvals_required", "approvers", "activated_at",
  "starts_at", "used_secs", "sessions", "calls", "writes", "denied", "state", "ended", "ended_by", "ended_at",
  "end_reason"];
export const TOTALS_COLUMNS = ["name", "grants", "activated", "break_glass", "used_secs", "sessions",
  "writes", "denied", "refused"];
export const EXCEPTION_COLUMNS = ["kind", "at", "grant_id", "who", "target", "detail"];

const refused = (a) => !!a.error_code && /AccessDenied|Unauthorized/.test(a.error_code);

function row(chain, exp, asOf) {
  const r = { grant_id: chain[0].grant_id, requester: "", target: "", reason: "", ticket: "",
    break_glass: false, requested_at: null, requested_secs: null, extended_secs: 0, policies: "",
    approvals_required: null, approvers: "", activated_at: null, starts_at: null, used_secs: null, sessions: 0,
    calls: null, writes: null, denied: null, state: "", ended: "", ended_by: "", ended_at: null,
    end_reason: "" };
  const approvers = [];
  for (const rec of chain) {
    const d = rec.detail || {};
    switch (rec.action) {
      case "REQUESTED":
        Object.assign(r, { requester: who(rec.actor), target: d.target || "", reason: d.reason || "",
          ticket: d.ticket || "", break_glass: d.break_glass === "true", requested_at: rec.at,
          requested_secs: d.duration_secs ? Number(d.duration_secs) : null,
          starts_at: d.starts_at ? Math.floor(Date.parse(d.starts_at) / 1000) : null });
        break;
      case "AWAITING_REVIEW": r.approvals_required = Number(d.approvals_required); break;
      case "AUTO_APPROVED": case "BREAK_GLASS_ACTIVATED": r.policies = d.policies || ""; break;
      case "APPROVED": if (who(rec.actor)) approvers.push(who(rec.actor)); break;
      case "SESSION_ISSUED": r.sessions += 1; break;
      case "EXTENDED": r.extended_secs += Number(d.extension_secs || 0); break;
      case "DENIED": case "CANCELLED": case "TIMED_OUT": case "EXPIRED": case "REVOKED":
        Object.assign(r, { ended: rec.action, ended_by: rec.actor, ended_at: rec.at,
          end_reason: rec.action === "REVOKED" ? d.reason || "" : rec.action === "DENIED" ? d.comment || "" : "" });
        break;
      default: break;
    }
    if (rec.from === "PENDING" && rec.to === "ACTIVE") r.activated_at = rec.at;
    r.state = rec.to;
  }
  r.approvers = approvers.join(",");
  if (r.activated_at !== null) {
    // Open from its activation, or from its scheduled start.
    const opened = r.starts_at !== null ? Math.max(r.starts_at, r.activated_at) : r.activated_at;
    const closed = ["EXPIRED", "REVOKED", "CANCELLED"].includes(r.ended) ? r.ended_at : null;
    const planned = r.requested_secs !== null ? opened + r.requested_secs + r.extended_secs : null;
    const candidates = [planned, exp.to, asOf]
      .filter((t) => t !== null && t !== undefined);
    const end = closed ?? Math.min(...candidates);
    r.used_secs = Math.max(0, end - opened);
  }
  const events = exp.activity && exp.activity[r.grant_id];
  if (events) {
    r.calls = events.length;
    r.writes = events.filter((a) => a.read_only === false && !refused(a)).length;
    r.denied = events.filter(refused).length;
  }
  return r;
}

/// The report of `exp` (verified) at `asOf` (unix seconds); `unattributed` as
/// `GET /audit/unattributed` gives its items.
export function buildReport(exp, { asOf, reviewWithinSecs = 86400, unattributed = [] }) {
  const chains = new Map();
  for (const rec of exp.records) {
    if (!chains.has(rec.grant_id)) chains.set(rec.grant_id, []);
    chains.get(rec.grant_id).push(rec);
  }
  const grants = [];
  const exceptions = [];
  const totals = { target: new Map(), person: new Map() };
  for (const chain of chains.values()) {
    chain.sort((a, b) => a.seq - b.seq);
    const r = row(chain, exp, asOf);
    grants.push(r);
    const exception = (kind, at, detail) => exceptions.push({ kind, at, grant_id: r.grant_id, who: r.requester, target: r.target, detail });
    const activated = chain.find((x) => x.action === "BREAK_GLASS_ACTIVATED");
    if (activated) {
      const due = activated.at + reviewWithinSecs;
      const reviewed = chain.find((x) => x.action === "POST_REVIEWED");
      if (reviewed && reviewed.at > due) exception("break_glass_review_late", reviewed.at, `reviewed by ${reviewed.actor}; due by ${iso(due)}`);
      else if (!reviewed && asOf >= due) exception("break_glass_review_missing", due, `break-glass activated at ${iso(activated.at)}; its review was due by ${iso(due)} and is not recorded`);
    }
    for (const x of chain) {
      if (x.action === "REVOKED" && x.actor === "service:sweeper") exception("revoked_by_guardrail", x.at, (x.detail || {}).reason || "");
    }
    for (const [map, name] of [[totals.target, r.target], [totals.person, r.requester]]) {
      const t = map.get(name) || { name, grants: 0, activated: 0, break_glass: 0, used_secs: 0, sessions: 0, writes: 0, denied: 0, refused: 0 };
      t.grants += 1; t.activated += r.activated_at !== null ? 1 : 0; t.break_glass += r.break_glass ? 1 : 0;
      t.used_secs += r.used_secs || 0; t.sessions += r.sessions; t.writes += r.writes || 0; t.denied += r.denied || 0;
      map.set(name, t);
    }
  }
  for (const u of unattributed) {
    if (u.event.time < exp.from || u.event.time >= exp.to) continue;
    exceptions.push({ kind: "unattributed_activity", at: u.event.time, grant_id: "", who: "", target: u.event.account,
      detail: `${u.event.service} ${u.event.action} in ${u.event.region}: ${u.why} (role ${u.role_arn}, session ${u.session_name})` });
  }
  grants.sort((a, b) => (a.requested_at ?? 0) - (b.requested_at ?? 0) || (a.grant_id < b.grant_id ? -1 : 1));
  exceptions.sort((a, b) => a.at - b.at || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
  const sorted = (m) => [...m.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { grants, by_target: sorted(totals.target), by_person: sorted(totals.person), exceptions };
}

function iso(secs) {
  return new Date(secs * 1000).toISOString().replace(".000Z", "Z");
}

// One CSV cell (RFC 4180); a text a spreadsheet would run as a formula gets a leading `'`.
function cell(v) {
  if (v === null || v === undefined) return "";
  let text = typeof v === "string" ? v : String(v);
  if (typeof v === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[,"\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(rows, columns) {
  return [columns.join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\r\n") + "\r\n";
}
