// The jit-access web page: sign-in (OpenID Connect, authorization code with PKCE), my requests,
// the request form, what I can review, a grant's page and the audit export.
//
// Rules this file keeps: every value from the API or the provider reaches the page as text
// (textContent, never innerHTML); the token lives in this module's memory only (a reload signs
// in again); only the PKCE verifier and state wait in sessionStorage across the provider's
// redirect, and are removed at once; session credentials are fetched when asked for, shown,
// and dropped when hidden or the view changes.

import { parseExport, verifyActivity, verifyExport, verifyTrail } from "/web/verify.js";
import { EXCEPTION_COLUMNS, GRANT_COLUMNS, TOTALS_COLUMNS, buildReport, toCsv } from "/web/report.js";

const main = document.getElementById("main");
const statusLine = document.getElementById("status");
const PKCE_KEY = "jit.signin";
// A link a click in Slack was answered with: `#/slack/<token>`.
const HANDOFF_ROUTE = /^\/slack\/([0-9a-f]{1,128})$/;

let config = null;
let provider = null;
let session = null; // { token, claims, expiresAt (ms), obtainedAt (ms), forHandoff (a Slack link's token) }

// ---------- small helpers ----------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function say(text, kind = "info") {
  statusLine.textContent = text;
  statusLine.className = kind;
}

function b64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

function claimsOf(jwt) {
  const part = jwt.split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(decodeURIComponent(Array.from(json, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("")));
}

function groupsOf(claims) {
  const g = claims[config.groups_claim] ?? claims.groups ?? [];
  return Array.isArray(g) ? g : String(g).split(/[ ,]+/).filter(Boolean);
}

function left(seconds) {
  if (seconds <= 0) return "ended";
  const h_ = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h_ ? `${h_}h ${String(m).padStart(2, "0")}m left` : `${m}m ${String(s).padStart(2, "0")}s left`;
}

function capitalised(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// ---------- sign-in ----------

// `extra` adds to the provider's parameters: a link from Slack asks for `prompt=login` and
// `max_age=0`, so the provider asks again (with its MFA) instead of reusing its own session.
async function signIn(extra = {}) {
  const verifier = randomText(32);
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const state = randomText(16);
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, back: location.hash || "#/" }));
  const url = new URL(provider.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: "openid email",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  }).toString();
  location.assign(url.toString());
  return new Promise(() => {}); // the page is leaving
}

function redirectUri() {
  return `${location.origin}/`;
}

// Back from the provider with ?code&state: exchange the code, forget the verifier, and take the
// code out of the address bar before anything else runs.
async function finishSignIn(params) {
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, "", `/${saved?.back || "#/"}`);
  if (params.get("error")) throw new Error(`the provider refused the sign-in: ${params.get("error_description") || params.get("error")}`);
  if (!saved || saved.state !== params.get("state")) throw new Error("the sign-in answer does not match the sign-in this page started; sign in again");
  const res = await fetch(provider.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: redirectUri(),
      client_id: config.client_id,
      code_verifier: saved.verifier,
    }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`the provider refused the code: ${body.error_description || body.error || res.status}`);
  const token = body.id_token || body.access_token;
  const claims = claimsOf(token);
  const expiresAt = (claims.exp ? claims.exp * 1000 : Date.now() + (body.expires_in || 3600) * 1000);
  // A sign-in started for a link from Slack is good for that link (once), no other.
  const forHandoff = HANDOFF_ROUTE.exec((saved.back || "").replace(/^#/, ""))?.[1];
  session = { token, claims, expiresAt, obtainedAt: Date.now(), forHandoff };
  setTimeout(() => say("Your sign-in has expired: the next action signs you in again.", "warn"), Math.max(0, expiresAt - Date.now()));
}

function signOut() {
  session = null;
  history.replaceState(null, "", "/");
  say("Signed out.");
  render();
}

// ---------- the API ----------

async function api(method, path, body) {
  if (!session || Date.now() >= session.expiresAt - 5000) return signIn();
  const init = { method, headers: { authorization: `Bearer ${session.token}` } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  // A throttled request (429) never reached a function: it is sent again, waiting as the
  // command does (Retry-After, else a quarter second doubling to four), up to five times.
  for (let retries = 0; ; retries++) {
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, `the API cannot be reached (${e.message}); try again`);
    }
    if (res.status !== 429 || retries >= 5) break;
    const said = Number.parseInt(res.headers.get("retry-after") || "", 10);
    const wait = Math.min(Number.isFinite(said) ? said * 1000 : 250 * 2 ** Math.min(retries, 4), 4000);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (res.status === 401) {
    // A token this page just got and the API refuses will not get better by signing in again.
    if (Date.now() - session.obtainedAt < 15000) throw new ApiError(401, "the API does not accept this sign-in (check the provider's client id and issuer)", data);
    return signIn();
  }
  if (!res.ok) {
    const detail = data?.detail || data?.message || `HTTP ${res.status}`;
    throw new ApiError(res.status, res.status === 503 || res.status === 429 ? `${detail} (this is temporary: try again)` : detail, data);
  }
  return data;
}

// ---------- views ----------

function view(title, ...content) {
  main.replaceChildren(h("h1", { tabindex: "-1" }, title), ...content.flat(2));
  main.querySelector("h1").focus();
  document.title = `${title} · jit-access`;
}

// What an export's check said of the grants' activity.
function activityVerdict(summary) {
  const n = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;
  const unchecked = summary.activityUnchecked
    ? ` The activity of ${n(summary.activityUnchecked, "covered grant")} is not in the export: unchecked.` : "";
  return `Activity checked for ${n(summary.activityGrants, "grant")}: ${n(summary.activityCovered, "event")} covered by signed records, ${summary.activityNotYetCovered} not yet covered.${unchecked}`;
}

function failure(e) {
  return h("p", { class: "error", role: "alert" }, e.message || String(e));
}

function stateBadge(state) {
  return h("span", { class: `state state-${state.toLowerCase()}` }, state);
}

// Whether `grant` is granted but its scheduled start is still ahead.
function notYetOpen(grant) {
  return grant.state === "ACTIVE" && grant.starts_at && Date.parse(grant.starts_at) > Date.now();
}

function countdown(grant) {
  if (grant.state !== "ACTIVE" || !grant.ends_at) return "";
  if (notYetOpen(grant)) return h("span", { class: "countdown" }, `opens ${when(grant.starts_at)}`);
  return h("span", { class: "countdown", dataset: { ends: grant.ends_at } }, left(Math.round((Date.parse(grant.ends_at) - Date.now()) / 1000)));
}

setInterval(() => {
  for (const el of document.querySelectorAll("[data-ends]")) {
    el.textContent = left(Math.round((Date.parse(el.dataset.ends) - Date.now()) / 1000));
  }
}, 1000);

function grantTable(items, caption) {
  if (!items.length) return h("p", {}, "Nothing here yet.");
  return h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ["Target", "State", "Time", "Reason", "Requested"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((g) => h("tr", {},
      h("td", {}, h("a", { href: `#/grant/${encodeURIComponent(g.id)}` }, g.target),
        g.bundle ? h("span", { class: "hint bundle" }, ` (one request with ${g.bundle === g.id ? "others" : "another"})`) : ""),
      h("td", {}, stateBadge(g.state)),
      h("td", {}, g.state === "ACTIVE" ? countdown(g) : g.duration),
      h("td", { class: "reason" }, g.reason),
      h("td", {}, when(g.created_at)),
    ))));
}

async function myRequests() {
  view("My requests", h("p", {}, "Loading…"));
  const page = await api("GET", "/requests?scope=mine&limit=50");
  const active = page.items.filter((g) => g.state === "ACTIVE");
  const pending = page.items.filter((g) => g.state === "PENDING");
  const closed = page.items.filter((g) => !["ACTIVE", "PENDING"].includes(g.state));
  view("My requests",
    h("p", {}, h("a", { href: "#/new", class: "button" }, "Ask for access")),
    grantTable(active, "Active grants"),
    grantTable(pending, "Waiting for a decision"),
    grantTable(closed, "Ended"));
}

async function requestForm() {
  view("Ask for access", h("p", {}, "Loading…"));
  const targets = (await api("GET", "/targets")).items;
  if (!targets.length) return view("Ask for access", h("p", {}, "The rules let you ask for no target."));
  const durations = ["15m", "30m", "1h", "2h", "4h", "8h", "12h"];
  const secs = (d) => (d.endsWith("h") ? parseInt(d) * 3600 : parseInt(d) * 60);
  const maxOf = (t) => {
    const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(t.max_duration) || [];
    return (+m[1] || 0) * 3600 + (+m[2] || 0) * 60 + (+m[3] || 0) || 43200;
  };
  const target = h("select", { id: "target", name: "target", required: true },
    targets.map((t) => h("option", { value: t.id }, `${t.id}: ${t.description}`)));
  const duration = h("select", { id: "duration", name: "duration" });
  const ticketNote = h("span", { id: "ticket-note", class: "hint" });
  const ticket = h("input", { id: "ticket", name: "ticket", type: "text", autocomplete: "off", "aria-describedby": "ticket-note" });
  const reason = h("textarea", { id: "reason", name: "reason", rows: 3, required: true, minlength: 10, "aria-describedby": "reason-note" });
  const breakGlass = h("input", { id: "break-glass", name: "break_glass", type: "checkbox", "aria-describedby": "break-glass-warning" });
  const startsAt = h("input", { id: "starts-at", name: "starts_at", type: "datetime-local", step: 60, "aria-describedby": "starts-at-note" });
  // More targets in the same request: one reason and ticket, each decided on its own.
  const also = h("fieldset", { id: "also", class: "field" }, h("legend", {}, "Also ask for (one request, each decided on its own)"),
    targets.map((t) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "also", value: t.id, "data-target": t.id }), ` ${t.id}`)));
  const warning = h("p", { id: "break-glass-warning", class: "warning", hidden: true },
    "Break-glass opens access at once, without approval, for people the rules allow to break glass. " +
    "Security is told, and the grant owes a review afterwards. Use it only in an emergency.");
  const error = h("div", { class: "form-error", "aria-live": "assertive" });
  const update = () => {
    const t = targets.find((x) => x.id === target.value);
    duration.replaceChildren(...durations.filter((d) => secs(d) <= maxOf(t)).map((d) => h("option", { value: d }, d)));
    ticket.required = t.ticket_required;
    ticketNote.textContent = t.ticket_required ? "Required for this target." : "Optional.";
  };
  target.addEventListener("change", update);
  breakGlass.addEventListener("change", () => {
    warning.hidden = !breakGlass.checked;
    // Break-glass opens at once: it cannot be scheduled.
    startsAt.disabled = breakGlass.checked;
    if (breakGlass.checked) startsAt.value = "";
  });
  update();
  const form = h("form", { novalidate: true },
    h("div", { class: "field" }, h("label", { for: "target" }, "Target"), target),
    h("div", { class: "field" }, h("label", { for: "duration" }, "For how long"), duration),
    h("div", { class: "field" }, h("label", { for: "reason" }, "Reason"), reason,
      h("span", { id: "reason-note", class: "hint" }, "At least 10 characters: what you will do and why.")),
    h("div", { class: "field" }, h("label", { for: "ticket" }, "Ticket"), ticket, ticketNote),
    also,
    h("div", { class: "field" }, h("label", { for: "starts-at" }, "Start later (optional)"), startsAt,
      h("span", { id: "starts-at-note", class: "hint" },
        "Your local time, on the minute, at most 7 days ahead. Empty: access opens when granted. Approval must come before the start.")),
    h("div", { class: "field check" }, breakGlass, h("label", { for: "break-glass" }, "Break glass (emergency)")),
    warning, error,
    h("button", { type: "submit" }, "Ask for access"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    if (reason.value.trim().length < 10) return error.append(failure(new Error("Say why in at least 10 characters.")));
    if (ticket.required && !ticket.value.trim()) return error.append(failure(new Error("This target needs a ticket.")));
    const start = startsAt.value ? new Date(startsAt.value) : null;
    if (start && Number.isNaN(start.getTime())) return error.append(failure(new Error("The start is not a time.")));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const more = [...also.querySelectorAll("input:checked")].map((c) => c.value).filter((t) => t !== target.value);
    if (more.length && breakGlass.checked) {
      button.disabled = false;
      return error.append(failure(new Error("Break-glass opens one target; ask for the others separately.")));
    }
    const schedule = start ? { starts_at: start.toISOString().replace(/\.\d+Z$/, "Z") } : {};
    try {
      if (more.length) {
        const bundle = await api("POST", "/bundles", {
          targets: [target.value, ...more], duration: duration.value, reason: reason.value.trim(),
          ticket: ticket.value.trim() || null, ...schedule,
        });
        say(`Asked for ${bundle.items.map((g) => g.target).join(", ")} in one request.`);
        location.hash = `#/grant/${encodeURIComponent(bundle.bundle)}`;
        return;
      }
      const grant = await api("POST", "/requests", {
        target: target.value, duration: duration.value, reason: reason.value.trim(),
        ticket: ticket.value.trim() || null, break_glass: breakGlass.checked, ...schedule,
      });
      say(`Asked for ${grant.target}: ${grant.state}.`);
      location.hash = `#/grant/${encodeURIComponent(grant.id)}`;
    } catch (e) {
      error.append(failure(e));
      button.disabled = false;
    }
  });
  view("Ask for access", form);
}

// A review's comment box, error line and the approve/deny handler for `g`; `told` says what
// the reviewer is told once the review is recorded.
function reviewControls(g, told) {
  const comment = h("textarea", { id: `comment-${g.id}`, rows: 2, maxlength: 2000 });
  const error = h("div", { "aria-live": "assertive" });
  const decide = (decision) => async () => {
    error.replaceChildren();
    if (decision === "deny" && !comment.value.trim()) return error.append(failure(new Error("Say why you deny it.")));
    try {
      const after = await api("POST", `/requests/${encodeURIComponent(g.id)}/reviews`, {
        decision, ...(comment.value.trim() ? { comment: comment.value.trim() } : {}),
      });
      say(told(decision, after));
      await toReview();
    } catch (e) {
      error.append(failure(e));
    }
  };
  return { comment, error, decide };
}

// What waits for my review; with `only`, that request (or request of several) alone.
async function toReview(only) {
  view("To review", h("p", {}, "Loading…"));
  const page = await api("GET", "/requests?scope=reviewable&limit=50");
  const me = session.claims.sub;
  const cards = [];
  const items = only ? page.items.filter((g) => g.id === only || g.bundle === only) : page.items;
  if (only && !items.length) {
    return view("To review",
      h("p", {}, "That request no longer waits for your review: it was decided, withdrawn or timed out, or it is not yours to review."),
      h("p", {}, h("a", { href: "#/review" }, "Everything waiting for your review")));
  }
  for (const g of items) {
    if (g.extension) { cards.push(extensionCard(g, me)); continue; }
    const trail = await api("GET", `/requests/${encodeURIComponent(g.id)}/audit`).catch(() => null);
    const awaiting = trail?.records.find((r) => r.action === "AWAITING_REVIEW");
    const approvals = g.reviews.filter((r) => r.decision === "approve").length;
    const { comment, error, decide } = reviewControls(g, (decision, after) =>
      `${decision === "approve" ? "Approved" : "Denied"} ${after.target} for ${after.requester}: now ${after.state}.`);
    const reviewed = g.reviews.some((r) => r.reviewer === me);
    cards.push(h("article", { class: "card review", "aria-labelledby": `title-${g.id}` },
      h("h2", { id: `title-${g.id}` }, `${g.requester} asks for ${g.target}`),
      h("dl", {},
        h("dt", {}, "Reason"), h("dd", { class: "reason" }, g.reason),
        h("dt", {}, "Ticket"), h("dd", {}, g.ticket || "none"),
        h("dt", {}, "Duration"), h("dd", {}, g.duration),
        h("dt", {}, "When"), h("dd", { class: "window" }, g.starts_at
          ? `scheduled: from ${when(g.starts_at)} to ${when(new Date(Date.parse(g.starts_at) + g.duration_secs * 1000).toISOString())}`
          : "from approval"),
        h("dt", {}, "Break-glass"), h("dd", {}, g.break_glass ? "yes" : "no"),
        h("dt", {}, "What the rules said"), h("dd", {},
          `${g.rules_said ? capitalised(g.rules_said) : "Not auto-approved"}; needs ${g.approvals_required ?? awaiting?.detail.approvals_required ?? "?"} approval(s), ` +
          `to be decided by ${when(g.decide_by)} (policy set ${String(awaiting?.policy_hash || g.policy_hash).slice(0, 12)}).` +
          (awaiting?.detail.on_call ? ` On call: ${awaiting.detail.on_call}.` : "")),
        h("dt", {}, "Approvals so far"), h("dd", {}, `${approvals} of ${g.approvals_required ?? "?"}` +
          (g.reviews.length ? ` (${g.reviews.map((r) => `${r.reviewer}: ${r.decision}`).join(", ")})` : "")),
        ...(g.requirements?.length ? [h("dt", {}, "Requirements (all needed)"), h("dd", { class: "requirements" },
          g.requirements.map((r) => `${r.name}: ${r.met} of ${r.approvals}${r.met >= r.approvals ? " (met)" : ""}`).join("; "))] : [])),
      reviewed ? h("p", {}, "You have reviewed this request.") : [
        h("div", { class: "field" }, h("label", { for: `comment-${g.id}` }, "Comment (required to deny)"), comment),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "approve", onclick: decide("approve") }, "Approve"),
          h("button", { type: "button", class: "deny", onclick: decide("deny") }, "Deny"),
          ...(g.bundle ? [h("button", { type: "button", class: "approve", onclick: async () => {
            error.replaceChildren();
            try {
              const done = await api("POST", `/bundles/${encodeURIComponent(g.bundle)}/reviews`, {
                decision: "approve", ...(comment.value.trim() ? { comment: comment.value.trim() } : {}),
              });
              say(`Approved ${done.items.filter((i) => i.outcome === "approved").map((i) => i.target).join(", ")} of ${g.requester}'s request.`);
              await toReview();
            } catch (e) { error.append(failure(e)); }
          } }, "Approve every item of this request I may")] : [])),
        error,
      ],
      h("p", {}, h("a", { href: `#/grant/${encodeURIComponent(g.id)}` }, "Its page and trail"))));
  }
  view("To review", cards.length ? cards : h("p", {}, "Nothing waits for your review."),
    only ? h("p", {}, h("a", { href: "#/review" }, "Everything waiting for your review")) : [],
    config.slack && !only ? slackLinkCard() : []);
}

// Where approvals in Slack are set up: link a Slack user to me with the one-time code
// `/jit link` gives there (what `jit slack link CODE` does).
function slackLinkCard() {
  const code = h("input", { id: "slack-code", type: "text", autocomplete: "off", maxlength: 64, "aria-describedby": "slack-note" });
  const outcome = h("div", { role: "status" });
  const link = async () => {
    outcome.replaceChildren();
    try {
      const linked = await api("POST", "/slack/links", { code: code.value.trim() });
      code.value = "";
      outcome.append(h("p", { class: "linked" },
        `Linked: Slack user ${linked.user_id} of workspace ${linked.team_id} is you (${linked.sub}) when you click in Slack.`));
    } catch (e) { outcome.append(failure(e)); }
  };
  return h("section", { class: "card", "aria-labelledby": "slack-title" },
    h("h2", { id: "slack-title" }, "Review in Slack"),
    h("p", { id: "slack-note" }, "Type /jit link in Slack: it gives you a one-time code. Enter it here within 10 minutes to link that Slack user to you."),
    h("div", { class: "field" }, h("label", { for: "slack-code" }, "Code from Slack"), code),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: link }, "Link my Slack user")),
    outcome);
}

// A link a click in Slack was answered with: opened once, for the person the Slack user is
// linked to, after a sign-in made for it; then that request's review view.
async function openHandoff(token) {
  view("A request from Slack", h("p", {}, "Opening…"));
  let opened;
  try {
    opened = await api("POST", "/slack/handoffs", { token });
  } catch (e) {
    return view("A request from Slack", failure(e),
      h("p", {}, h("a", { href: "#/review" }, "Everything waiting for your review")));
  }
  history.replaceState(null, "", `#/review/${encodeURIComponent(opened.request_id)}`);
  await toReview(opened.request_id);
}

// An active grant whose requester asked for more time: approve or deny the extension.
function extensionCard(g, me) {
  const x = g.extension;
  const { comment, error, decide } = reviewControls(g, (decision, after) => (after.extension
    ? "Approved; the extension still needs approvals."
    : `${decision === "approve" ? "Approved" : "Denied"} the extension: ${after.target} for ${after.requester} now ends ${when(after.ends_at)}.`));
  const reviewed = x.reviews.some((r) => r.reviewer === me);
  return h("article", { class: "card review extension", "aria-labelledby": `title-${g.id}` },
    h("h2", { id: `title-${g.id}` }, `${g.requester} asks for ${x.duration} more on ${g.target}`),
    h("dl", {},
      h("dt", {}, "Reason"), h("dd", { class: "reason" }, x.reason),
      h("dt", {}, "Grant's reason"), h("dd", {}, g.reason),
      h("dt", {}, "Ticket"), h("dd", {}, g.ticket || "none"),
      h("dt", {}, "Ends now"), h("dd", {}, when(g.ends_at)),
      h("dt", {}, "Would end"), h("dd", {}, when(x.ends_at)),
      h("dt", {}, "Approvals so far"), h("dd", {}, `${x.reviews.length} of ${x.approvals_required}`)),
    reviewed ? h("p", {}, "You have approved this extension.") : [
      h("div", { class: "field" }, h("label", { for: `comment-${g.id}` }, "Comment (required to deny)"), comment),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "approve", onclick: decide("approve") }, "Approve extension"),
        h("button", { type: "button", class: "deny", onclick: decide("deny") }, "Deny extension")),
      error,
    ],
    h("p", {}, h("a", { href: `#/grant/${encodeURIComponent(g.id)}` }, "Its page and trail")));
}

async function grantPage(id) {
  view("Grant", h("p", {}, "Loading…"));
  const trail = await api("GET", `/requests/${encodeURIComponent(id)}/audit`);
  const g = trail.grant;
  const problem = await verifyTrail(trail);
  const mine = g.requester === session.claims.sub;
  const parts = [];
  parts.push(h("dl", { class: "grant" },
    h("dt", {}, "State"), h("dd", {}, stateBadge(g.state), " ", countdown(g)),
    h("dt", {}, "Requester"), h("dd", {}, g.requester),
    h("dt", {}, "Role"), h("dd", {}, h("code", {}, g.role_arn)),
    h("dt", {}, "Reason"), h("dd", { class: "reason" }, g.reason),
    h("dt", {}, "Ticket"), h("dd", {}, g.ticket || "none"),
    h("dt", {}, "Duration"), h("dd", {}, g.duration),
    ...(g.starts_at ? [h("dt", {}, "Opens"), h("dd", { id: "opens" }, when(g.starts_at))] : []),
    h("dt", {}, "Ends"), h("dd", {}, when(g.ends_at)),
    h("dt", {}, "Grant id"), h("dd", {}, h("code", {}, g.id))));

  const actions = h("div", { class: "actions" });
  const output = h("div", { class: "output", "aria-live": "polite" });
  if (g.bundle) {
    const siblings = await api("GET", `/bundles/${encodeURIComponent(g.bundle)}`).catch(() => null);
    if (siblings) {
      parts.push(h("section", { "aria-labelledby": "bundle-title", id: "bundle" },
        h("h2", { id: "bundle-title" }, `One request of ${siblings.items.length} targets`),
        h("ul", {}, siblings.items.map((x) => h("li", {},
          x.id === g.id ? h("strong", {}, x.target) : h("a", { href: `#/grant/${encodeURIComponent(x.id)}` }, x.target),
          " ", stateBadge(x.state))))));
    }
  }
  const waiting = notYetOpen(g);
  if (waiting && mine) {
    parts.push(h("p", { id: "not-yet-open" },
      `Granted: access opens ${when(g.starts_at)}. Credentials are refused until then; you may cancel it before.`));
  }
  if (g.state === "ACTIVE" && mine && !waiting) {
    parts.push(h("section", { "aria-labelledby": "use-title" },
      h("h2", { id: "use-title" }, "Use it"),
      h("p", {}, "Add this profile to ~/.aws/config; the jit command fetches and caches the credentials:"),
      h("pre", { class: "snippet" }, `[profile ${g.target}]\ncredential_process = jit credentials ${g.id}`)));
    let shown = null;
    const reveal = h("button", { type: "button", onclick: async () => {
      if (shown) { shown.remove(); shown = null; reveal.textContent = "Show credentials"; return; }
      try {
        const c = await api("POST", `/grants/${encodeURIComponent(g.id)}/credentials`);
        shown = h("div", { class: "secret" },
          h("p", {}, `Session credentials, valid until ${when(c.Expiration)}. They are not stored; hide them when done.`),
          h("pre", { id: "credentials" }, `export AWS_ACCESS_KEY_ID=${c.AccessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${c.SecretAccessKey}\nexport AWS_SESSION_TOKEN=${c.SessionToken}`));
        output.replaceChildren(shown);
        reveal.textContent = "Hide credentials";
      } catch (e) { output.replaceChildren(failure(e)); }
    } }, "Show credentials");
    const consoleButton = h("button", { type: "button", onclick: async () => {
      try {
        const link = await api("POST", `/grants/${encodeURIComponent(g.id)}/console`);
        output.replaceChildren(h("p", {}, h("a", { id: "console-link", href: link.url, target: "_blank", rel: "noopener noreferrer" },
          "Open the AWS console"), ` (the session ends ${when(link.expires_at)})`));
      } catch (e) { output.replaceChildren(failure(e)); }
    } }, "Console sign-in link");
    actions.append(reveal, consoleButton);
    if (g.extension) {
      parts.push(h("p", { id: "extension-waiting" },
        `You asked for ${g.extension.duration} more; waiting for ${g.extension.approvals_required - g.extension.reviews.length} approval(s). ` +
        `Approved, it ends ${when(g.extension.ends_at)}.`));
    } else {
      const more = h("select", { id: "extend-by" }, ["30m", "1h", "2h"].map((d) => h("option", { value: d }, d)));
      const why = h("input", { id: "extend-reason", type: "text", autocomplete: "off" });
      parts.push(h("section", { "aria-labelledby": "extend-title" },
        h("h2", { id: "extend-title" }, "Need more time?"),
        h("div", { class: "field" }, h("label", { for: "extend-by" }, "Add"), more),
        h("div", { class: "field" }, h("label", { for: "extend-reason" }, "Why"), why),
        h("button", { type: "button", id: "extend", onclick: async () => {
          if (!why.value.trim()) return output.replaceChildren(failure(new Error("Say why you need more time.")));
          try {
            const after = await api("POST", `/grants/${encodeURIComponent(g.id)}/extend`, { duration: more.value, reason: why.value.trim() });
            say(after.extension ? `Extension asked: waiting for ${after.extension.approvals_required} approval(s).`
              : `Extended: it now ends ${when(after.ends_at)}.`);
            await grantPage(id);
          } catch (e) { output.replaceChildren(failure(e)); }
        } }, "Extend")));
    }
  }
  if ((g.state === "PENDING" || waiting) && mine) {
    actions.append(h("button", { type: "button", class: "deny", id: "cancel", onclick: async () => {
      try { await api("POST", `/requests/${encodeURIComponent(g.id)}/cancel`); say("Cancelled."); await grantPage(id); }
      catch (e) { output.replaceChildren(failure(e)); }
    } }, waiting ? "Cancel before it opens" : "Cancel request"));
  }
  if (g.state === "ACTIVE") {
    const reason = h("input", { id: "revoke-reason", type: "text", autocomplete: "off" });
    actions.append(h("span", { class: "revoke" },
      h("label", { for: "revoke-reason" }, "Reason to revoke"), reason,
      h("button", { type: "button", class: "deny", onclick: async () => {
        if (!reason.value.trim()) return output.replaceChildren(failure(new Error("Say why you revoke it.")));
        try {
          await api("POST", `/grants/${encodeURIComponent(g.id)}/revoke`, { reason: reason.value.trim() });
          say("Revoked: live sessions are cut off.");
          await grantPage(id);
        } catch (e) { output.replaceChildren(failure(e)); }
      } }, "Revoke")));
  }
  if (actions.childNodes.length) parts.push(actions, output);

  parts.push(h("section", { "aria-labelledby": "trail-title" },
    h("h2", { id: "trail-title" }, "Audit trail"),
    h("p", { class: problem ? "error" : "ok", id: "trail-check" },
      problem ? `The trail does not verify: ${problem}` : `Verified: ${trail.records.length} records, each hash, link and signature checked in this page.`),
    h("table", {},
      h("thead", {}, h("tr", {}, ["#", "When", "What", "Who", "Details", "Signed by"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, trail.records.map((r) => h("tr", {},
        h("td", {}, r.seq), h("td", {}, when(r.time)), h("td", {}, r.action), h("td", {}, r.actor),
        h("td", { class: "detail" }, Object.entries(r.detail).map(([k, v]) => `${k}: ${v}`).join("; ")),
        h("td", {}, r.signature?.signer || "unsigned")))))));
  parts.push(await activitySection(g, problem ? null : trail.records));
  view(`${g.target} for ${g.requester}`, ...parts);
}

// Every event of the grant's activity, checked against the signed records that cover it (only
// when the trail itself verified: `records` is null otherwise).
async function activityCheck(path, records) {
  if (!records) return h("p", { id: "activity-check", class: "error" }, "Not checked: the trail does not verify.");
  try {
    const events = [];
    let next = null;
    for (;;) {
      const q = new URLSearchParams({ limit: "100" });
      if (next) q.set("next", next);
      const page = await api("GET", `${path}?${q}`);
      if (!page.items.length) break;
      events.push(...page.items);
      next = page.next;
    }
    const v = await verifyActivity(records, events);
    if (v.problem) return h("p", { id: "activity-check", class: "error" }, `The activity does not verify: ${v.problem}`);
    const late = v.notYetCovered ? `; ${v.notYetCovered} not yet covered (the sweeper covers what CloudTrail delivers after a grant ends)` : "";
    return h("p", { id: "activity-check", class: v.records ? "ok" : "hint" },
      `Covered: ${v.covered} events by ${v.records} signed record${v.records === 1 ? "" : "s"}${late}.`);
  } catch (e) { return failure(e); }
}

// What the grant's sessions did, from CloudTrail (minutes late), oldest first, page by page.
async function activitySection(g, records) {
  const path = `/requests/${encodeURIComponent(g.id)}/activity`;
  const rows = h("tbody", {});
  const note = h("p", { id: "activity-note", class: "hint" });
  const more = h("button", { type: "button", hidden: true }, "More");
  let next = null;
  let shown = 0;
  const load = async () => {
    try {
      const q = new URLSearchParams({ limit: "50" });
      if (next) q.set("next", next);
      const page = await api("GET", `${path}?${q}`);
      for (const a of page.items) {
        const outcome = a.error_code ? `refused (${a.error_code})` : a.read_only === true ? "read" : a.read_only === false ? "write" : "";
        rows.append(h("tr", {},
          h("td", {}, when(a.at)), h("td", {}, a.region), h("td", {}, a.service.replace(/\.amazonaws\.com$/, "")),
          h("td", {}, a.action), h("td", { class: a.error_code ? "error" : "" }, outcome),
          h("td", { class: "detail" }, a.resources.join(", ")), h("td", {}, h("code", {}, a.event_id))));
      }
      shown += page.items.length;
      if (page.next) next = page.next;
      more.hidden = page.items.length < 50;
      const capped = page.over_cap ? `; ${page.over_cap} more past the grant's cap were counted, not kept` : "";
      note.textContent = shown
        ? `${shown} of ${page.stored} calls shown${capped}. CloudTrail delivers events minutes late.`
        : `No activity recorded yet${capped}. CloudTrail delivers events minutes late.`;
    } catch (e) { note.replaceChildren(failure(e)); }
  };
  more.onclick = load;
  await load();
  return h("section", { "aria-labelledby": "activity-title" },
    h("h2", { id: "activity-title" }, "Activity"),
    note,
    await activityCheck(path, records),
    h("table", { id: "activity" },
      h("thead", {}, h("tr", {}, ["When", "Region", "Service", "Action", "Outcome", "Resources", "CloudTrail event"].map((t) => h("th", { scope: "col" }, t)))),
      rows),
    more);
}

// The report of a verified export: the calls no grant accounts for on each day of the range,
// then the grants and exceptions tables, each also as CSV.
async function reportOf(exp) {
  const unattributed = [];
  for (let day = Math.floor(exp.from / 86400) * 86400; day < exp.to; day += 86400) {
    let next = null;
    do {
      const q = new URLSearchParams({ day: new Date(day * 1000).toISOString().slice(0, 10), limit: "100" });
      if (next) q.set("next", next);
      const page = await api("GET", `/audit/unattributed?${q}`);
      unattributed.push(...page.items);
      next = page.next;
    } while (next);
  }
  const report = buildReport(exp, { asOf: Math.floor(Date.now() / 1000), unattributed });
  const table = (id, rows, columns) => h("table", { id },
    h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...columns.map((c) => h("td", {}, r[c] === null || r[c] === undefined ? "" : String(r[c])))))));
  const download = (name, rows, columns) => h("a", {
    href: URL.createObjectURL(new Blob([toCsv(rows, columns)], { type: "text/csv" })), download: `jit-${name}.csv` }, `${name}.csv`);
  return [
    h("h2", {}, "Report"),
    h("p", { class: "hint" }, "From the verified records of the range. `jit report` adds whole chains of grants begun before it and the requests the rules refused (intake's log)."),
    h("h3", {}, `Exceptions (${report.exceptions.length})`), table("report-exceptions", report.exceptions, EXCEPTION_COLUMNS),
    h("h3", {}, `Grants (${report.grants.length})`), table("report-grants", report.grants, ["grant_id", "requester", "target", "reason", "approvers", "used_secs", "sessions", "calls", "writes", "denied", "ended", "ended_by"]),
    h("p", {}, "CSV: ", download("grants", report.grants, GRANT_COLUMNS), " ", download("targets", report.by_target, TOTALS_COLUMNS), " ",
      download("people", report.by_person, TOTALS_COLUMNS), " ", download("exceptions", report.exceptions, EXCEPTION_COLUMNS)),
  ];
}

async function auditPage() {
  const today = new Date();
  const day = (d) => d.toISOString().slice(0, 10);
  const from = h("input", { id: "from", type: "date", value: day(today), required: true });
  const to = h("input", { id: "to", type: "date", value: day(new Date(today.getTime() + 86400000)), required: true });
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", {},
    h("div", { class: "field" }, h("label", { for: "from" }, "From (UTC day)"), from),
    h("div", { class: "field" }, h("label", { for: "to" }, "To (UTC day)"), to),
    h("button", { type: "submit" }, "Export and verify"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.replaceChildren(h("p", {}, "Exporting…"));
    try {
      const exp = { from: 0, to: 0, records: [], heads: [], checkpoints: [], keys: [], checkpoint_period: undefined, exported_at: undefined };
      let next = null;
      do {
        const q = new URLSearchParams({ from: `${from.value}T00:00:00Z`, to: `${to.value}T00:00:00Z`, limit: "100" });
        if (next) q.set("next", next);
        const page = await api("GET", `/audit?${q}`);
        Object.assign(exp, { from: page.from, to: page.to, keys: page.keys, checkpoint_period: page.checkpoint_period });
        // The first page's time: a checkpoint due by then is due on every later page too.
        if (exp.exported_at === undefined) exp.exported_at = page.exported_at;
        exp.records.push(...page.records);
        for (const hd of page.heads) {
          const known = exp.heads.find((x) => x.grant_id === hd.grant_id);
          if (!known) exp.heads.push(hd); else if (hd.head.seq > known.head.seq) known.head = hd.head;
        }
        for (const c of page.checkpoints) if (!exp.checkpoints.some((x) => x.seq === c.seq)) exp.checkpoints.push(c);
        next = page.next;
      } while (next);
      // The activity of each grant a record in the range covers, every page, as `jit audit
      // export` carries it.
      exp.activity = {};
      const covered = new Set(exp.records.filter((r) => r.action === "ACTIVITY_COVERED").map((r) => r.grant_id));
      for (const grantId of covered) {
        const events = [];
        let after = null;
        for (;;) {
          const q = new URLSearchParams({ limit: "100" });
          if (after) q.set("next", after);
          const page = await api("GET", `/requests/${encodeURIComponent(grantId)}/activity?${q}`);
          if (!page.items.length) break;
          events.push(...page.items.map(({ at, hash, ...event }) => event));
          after = page.next;
        }
        exp.activity[grantId] = events;
      }
      const summary = await verifyExport(exp);
      const blob = new Blob([JSON.stringify(exp, null, 2)], { type: "application/json" });
      result.replaceChildren(
        h("p", { id: "audit-check", class: summary.problem ? "error" : "ok" },
          summary.problem ? `The export does not verify: ${summary.problem}`
            : `Verified: ${summary.records} records of ${summary.grants} grants and ${summary.checkpoints} checkpoints; every hash, link, signature, head and checkpoint holds, and every period closed by then has its checkpoint. ${activityVerdict(summary)}`),
        h("p", {}, h("a", { href: URL.createObjectURL(blob), download: `jit-audit-${from.value}.json` }, "Download the export")),
        h("p", { class: "hint" }, "For an independent check, run `jit audit export` and `jit audit verify` with keys you pinned yourself."));
      if (!summary.problem) result.append(...await reportOf(exp));
    } catch (e) {
      result.replaceChildren(failure(e));
    }
  });
  // A saved export (this page's download or `jit audit export`'s JSON Lines), checked against
  // the keys this deployment serves now, never the keys the file carries: a file re-signed
  // with other keys does not pass.
  const file = h("input", { id: "export-file", type: "file", accept: ".json,.jsonl,application/json" });
  const fileResult = h("div", { "aria-live": "polite" });
  const fileForm = h("form", {},
    h("div", { class: "field" }, h("label", { for: "export-file" }, "A saved export"), file),
    h("button", { type: "submit" }, "Check the file"));
  fileForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    fileResult.replaceChildren(h("p", {}, "Checking…"));
    try {
      if (!file.files.length) throw new Error("Choose a file first.");
      const text = await file.files[0].text();
      let exp;
      try { exp = parseExport(text); } catch (e) { throw new Error(`The file is not an export: ${e}`); }
      const now = new Date();
      const q = new URLSearchParams({ from: now.toISOString(), to: new Date(now.getTime() + 1000).toISOString(), limit: "1" });
      const { keys } = await api("GET", `/audit?${q}`);
      const summary = await verifyExport(exp, { keys });
      fileResult.replaceChildren(h("p", { id: "file-check", class: summary.problem ? "error" : "ok" },
        summary.problem ? `The file does not verify against this deployment's keys: ${summary.problem}`
          : `Verified against this deployment's keys: ${summary.records} records of ${summary.grants} grants and ${summary.checkpoints} checkpoints. ${activityVerdict(summary)}`));
    } catch (e) {
      fileResult.replaceChildren(h("p", { id: "file-check", class: "error" }, e.message || String(e)));
    }
  });
  view("Audit export", h("p", {}, "For auditors: every record of a time range, checked in this page."), form, result,
    h("h2", {}, "Check a saved export"), fileForm, fileResult);
}

// ---------- routing ----------

function signedOut() {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").textContent = "";
  view("Just-in-time access",
    h("p", {}, "Ask for time-bound access to production roles, review others' requests, and check the audit trail."),
    h("button", { type: "button", id: "sign-in", onclick: () => signIn() }, "Sign in"));
}

async function render() {
  const route = location.hash.replace(/^#/, "") || "/";
  const handoff = HANDOFF_ROUTE.exec(route);
  if (handoff && session?.forHandoff !== handoff[1]) return signIn({ prompt: "login", max_age: "0" });
  if (!session) return signedOut();
  document.getElementById("nav").hidden = false;
  const who = document.getElementById("who");
  who.replaceChildren(`${session.claims.email || session.claims.sub} (${groupsOf(session.claims).join(", ")}) `,
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#${route}`) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  try {
    const grant = /^\/grant\/([^/]+)$/.exec(route);
    const one = /^\/review\/([^/]+)$/.exec(route);
    if (handoff) await openHandoff(handoff[1]);
    else if (grant) await grantPage(decodeURIComponent(grant[1]));
    else if (one) await toReview(decodeURIComponent(one[1]));
    else if (route === "/new") await requestForm();
    else if (route === "/review") await toReview();
    else if (route === "/audit") await auditPage();
    else await myRequests();
  } catch (e) {
    view("Something went wrong", failure(e));
  }
}

window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/")) render();
});

async function start() {
  try {
    const res = await fetch("/web/config.json");
    config = await res.json();
    if (!res.ok) throw new Error(config.detail || "the page has no sign-in settings");
    const discovery = await fetch(`${config.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`).catch(() => null);
    if (!discovery?.ok) throw new Error(`the identity provider (${config.issuer}) cannot be reached`);
    provider = await discovery.json();
    const params = new URLSearchParams(location.search);
    if (params.has("code") || params.has("error")) await finishSignIn(params);
  } catch (e) {
    view("Cannot sign in", failure(e), h("button", { type: "button", onclick: () => location.replace("/") }, "Try again"));
    return;
  }
  await render();
}

start();
