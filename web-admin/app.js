// Bureau's console: a small single-page app on the JSON admin API (docs/admin-api.md).
// No build step and no dependencies: the daemon embeds this directory as it is.
// Every text from the server goes into the page as text (never as HTML).

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

/** The signed-in session: {uid, admin, csrf}, or null. */
let me = null;

// ---- the API ----

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `request failed (${status})`);
    this.status = status;
    this.field = body?.field;
  }
}

/** Calls the API; `body` is sent as JSON, or as it is when it is a file. */
async function api(method, path, body) {
  const headers = {};
  const raw = body instanceof Blob;
  if (body !== undefined) headers["Content-Type"] = raw ? "application/octet-stream" : "application/json";
  if (me && method !== "GET") headers["X-CSRF-Token"] = me.csrf;
  const r = await fetch(`/api/v1/${path}`, {
    method, headers, credentials: "same-origin",
    body: body === undefined || raw ? body : JSON.stringify(body),
  });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (r.status === 401 && path !== "session") {
    // The session ended (expired, or the account changed): sign in again, then back here
    // with what was typed in this page's forms (passwords excepted).
    const wasSignedIn = me !== null;
    me = null;
    if (wasSignedIn) keepForReturn(drawn || location.hash, formValues());
    go("#/login?expired=1");
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// ---- coming back after signing in again ----

// Where to go after the next sign-in, and the forms' values to put back: kept for this tab
// only (sessionStorage), never a password.
function keepForReturn(hash, forms = {}) {
  sessionStorage.setItem("bureau-return", JSON.stringify({ hash, forms }));
}

function formValues() {
  const forms = {};
  for (const f of main.querySelectorAll("form[data-form]")) {
    const values = {};
    for (const i of f.querySelectorAll("input[name], select[name], textarea[name]")) {
      if (i.type === "password" || i.type === "file") continue;
      const key = i.closest("fieldset.checklist") ? `${i.name}=${i.value}` : i.name;
      values[key] = i.type === "checkbox" ? i.checked : i.value;
    }
    forms[f.dataset.form] = values;
  }
  return forms;
}

/** After a sign-in: the page to go to (once), and its forms' values put back when drawn. */
let refill = null;
function returnTo(fallback) {
  const kept = JSON.parse(sessionStorage.getItem("bureau-return") || "null");
  sessionStorage.removeItem("bureau-return");
  refill = kept?.forms || null;
  go(kept?.hash && !kept.hash.startsWith("#/login") ? kept.hash : fallback);
}

function refillForms() {
  if (!refill) return;
  for (const [id, values] of Object.entries(refill)) {
    const f = main.querySelector(`form[data-form="${CSS.escape(id)}"]`);
    for (const [key, v] of Object.entries(values)) {
      const [name, value] = key.split("=", 2);
      const i = f?.querySelector(value === undefined ? `[name="${CSS.escape(name)}"]`
        : `[name="${CSS.escape(name)}"][value="${CSS.escape(value)}"]`);
      if (!i) continue;
      if (i.type === "checkbox") i.checked = v;
      else i.value = v;
    }
  }
  refill = null;
}

// ---- what a password must be ----

/** The password rules, said before anyone types (the server checks the same). */
let minPassword = null;
async function passwordRules(extra = "") {
  if (minPassword === null) minPassword = (await api("GET", "setup")).password_min_len;
  return `At least ${minPassword} characters; not containing the user name; not one character repeated.${extra}`;
}

// ---- building the page ----

/** An element: h("p", {class: "x"}, "text", child, ...). */
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// Draws a page. Parts left out (null, false) are skipped: replaceChildren would write
// them as the text "null". The window's title names the page; the page starts at its top,
// and from the second page on the focus goes there too (a screen reader reads on from the
// heading; nothing scrolls to a form at the bottom); on the first, the focus stays at the
// document's start, where the skip link is the first Tab stop. Pages that are one form
// (sign-in, setup) focus its first field.
let shown = false;
/** The address of the page drawn now (the address bar may be ahead of it). */
let drawn = null;
function show(...nodes) {
  drawn = location.hash;
  main.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
  const title = main.querySelector("h1")?.textContent;
  document.title = title ? `${title} · Bureau` : "Bureau";
  window.scrollTo(0, 0);
  if (shown) main.focus({ preventScroll: true });
  shown = true;
  refillForms();
}

function focusFirstField() {
  main.querySelector("input:not([type=hidden])")?.focus();
}

// The skip link moves the focus past the navigation without changing the page's address.
document.querySelector(".skip").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

const fmtBytes = (n) => {
  if (n === null || n === undefined) return "unlimited";
  const u = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
};
const fmtTime = (secs) => new Date(secs * 1000).toLocaleString();

/**
 * A form: fields [{name, label, type, value, required, hint, options}], a button label and
 * what to do with the values. An ApiError naming a field (or the input `opts.alias` maps
 * that field to) is shown beside it; others above the button. Nothing is changed by a refused request, so the form keeps what was typed.
 */
// A form. `submit` may return a message: what the server reported, shown beside the
// button (an object { error } shows as a failure there). The button says it is busy
// while the server answers.
function form(title, fields, button, submit, opts = {}) {
  const status = h("p", { class: "error", role: "alert" });
  const result = h("p", { class: "ok", role: "status" });
  const inputs = {};
  const errors = {};
  const f = h("form", { class: "card", novalidate: true, "data-form": opts.id || title },
    title ? h("h2", {}, title) : null);
  for (const fd of fields) {
    const id = `f-${opts.id || "x"}-${fd.name}`;
    let input;
    if (fd.type === "checklist") {
      // Several choices, each a checkbox: [value, label] options, `value` the checked ones.
      input = h("fieldset", { id, class: "checklist" }, h("legend", {}, fd.label),
        fd.options.length ? fd.options.map(([v, l]) => h("label", { class: "check" },
          h("input", { type: "checkbox", name: fd.name, value: v, checked: (fd.value || []).includes(v) }), ` ${l}`))
          : h("p", { class: "muted" }, fd.empty || "Nothing to choose from yet."));
    } else if (fd.type === "textarea") {
      input = h("textarea", { id, name: fd.name, rows: 6, placeholder: fd.placeholder, spellcheck: "false" });
    } else if (fd.type === "select") {
      input = h("select", { id, name: fd.name },
        fd.options.map(([v, l]) => h("option", { value: v, selected: v === fd.value }, l)));
    } else {
      input = h("input", {
        id, name: fd.name, type: fd.type || "text", autocomplete: fd.autocomplete || "off",
        required: fd.required, placeholder: fd.placeholder,
      });
      if (fd.type === "checkbox") input.checked = !!fd.value;
      else if (fd.value !== undefined && fd.value !== null) input.value = fd.value;
    }
    inputs[fd.name] = input;
    errors[fd.name] = h("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
    // The hint and the error are read with the field.
    input.setAttribute("aria-describedby", [fd.hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" "));
    f.append(fd.type === "checklist" ? null : h("label", { for: id }, fd.label), input);
    if (fd.hint) f.append(h("p", { class: "muted", id: `${id}-hint` }, fd.hint));
    f.append(errors[fd.name]);
  }
  const submitButton = h("button", { type: "submit" }, button);
  f.append(status, result, submitButton);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.textContent = "";
    result.textContent = "";
    for (const n in errors) {
      errors[n].textContent = "";
      inputs[n].classList.remove("invalid");
      inputs[n].removeAttribute("aria-invalid");
    }
    const values = {};
    for (const [n, i] of Object.entries(inputs)) {
      values[n] = i.tagName === "FIELDSET" ? [...i.querySelectorAll("input:checked")].map((c) => c.value)
        : i.type === "checkbox" ? i.checked : i.value.trim();
    }
    for (const fd of fields) {
      if (fd.required && !values[fd.name]) {
        errors[fd.name].textContent = `${fd.label} is needed.`;
        inputs[fd.name].classList.add("invalid");
        inputs[fd.name].setAttribute("aria-invalid", "true");
        return;
      }
    }
    submitButton.disabled = true;
    submitButton.setAttribute("aria-busy", "true");
    submitButton.textContent = "Working…";
    try {
      const said = await submit(values);
      // The page may have been drawn again meanwhile: the message goes to this form as it
      // is now.
      const now = main.querySelector(`form[data-form="${opts.id || title}"]`) || f;
      if (typeof said === "string") now.querySelector("[role=status]").textContent = said;
      else if (said?.error) now.querySelector("[role=alert]").textContent = said.error;
    } catch (e) {
      const named = (opts.alias || {})[e.field] || e.field;
      const field = named && errors[named] ? named : null;
      if (field) {
        // Beside the field, its name need not be repeated.
        errors[field].textContent = e.field ? e.message.replace(`${e.field}: `, "") : e.message;
        inputs[field].classList.add("invalid");
        inputs[field].setAttribute("aria-invalid", "true");
        (inputs[field].tagName === "FIELDSET" ? inputs[field].querySelector("input") : inputs[field])?.focus();
      } else {
        status.textContent = e.message;
      }
    } finally {
      submitButton.disabled = false;
      submitButton.removeAttribute("aria-busy");
      submitButton.textContent = button;
    }
  });
  return f;
}

// A table in a box of its own width: on a narrow screen the table scrolls, not the page.
// A table of names and values has no header row (all headers empty); a column of buttons is
// headed "Actions" for screen readers only.
function table(headers, rows) {
  const head = headers.every((x) => x === "") ? null
    : h("thead", {}, h("tr", {}, headers.map((x) => {
      const [label, attrs] = typeof x === "string" ? [x, {}] : x;
      return h("th", attrs, label === "" ? h("span", { class: "sr-only" }, "Actions") : label);
    })));
  return h("div", { class: "scroll" }, h("table", {}, head, h("tbody", {}, rows)));
}

function confirmButton(label, question, action) {
  return h("button", {
    class: "danger", type: "button",
    onclick: async () => { if (confirm(question)) await action(); },
  }, label);
}

// ---- pages ----

/** The login and password while the sign-in asks for the authenticator app's code. */
let signingIn = null;

async function pageLogin(query) {
  let pending = false;
  try { pending = (await api("GET", "setup")).pending; } catch { /* shown below if it matters */ }
  if (pending) return go("#/setup");
  const kept = sessionStorage.getItem("bureau-return");
  const step2 = signingIn;
  show(h("h1", {}, "Sign in"),
    query.get("expired") && kept ? h("p", { class: "error", role: "alert" },
      "Your session has ended. Sign in again to go back to the page you were on; what you typed there is kept.") : null,
    form("", step2 ? [
      { name: "code", label: "Code from your authenticator app", required: true, autocomplete: "one-time-code",
        hint: `Two-factor sign-in is on for ${step2.login}: type the six digits the app shows.` },
    ] : [
      { name: "login", label: "Address or user name", required: true, autocomplete: "username" },
      { name: "password", label: "Password", type: "password", required: true, autocomplete: "current-password" },
    ], "Sign in", async (v) => {
      try {
        me = await api("POST", "session", step2 ? { ...step2, code: v.code } : { login: v.login, password: v.password });
      } catch (e) {
        // The password was right; the code is asked next.
        if (e.field === "code" && !step2) {
          signingIn = { login: v.login, password: v.password };
          return pageLogin(query);
        }
        throw e;
      }
      signingIn = null;
      returnTo(me.admin ? "#/" : "#/me");
    }, { id: "login" }),
    step2 ? h("p", {}, h("button", { class: "plain", type: "button", onclick: () => { signingIn = null; pageLogin(query); } },
      "Sign in as someone else")) : null);
  focusFirstField();
}

async function pageSetup() {
  const state = await api("GET", "setup");
  if (!state.pending) return go("#/login");
  show(h("h1", {}, "Set up Bureau"),
    h("p", {}, "The setup token is shown on the box's screen and serial console (or run ",
      h("code", {}, "bureau setup-token"), " on the box). This makes the first administrator and its mail domain."),
    form("", [
      { name: "token", label: "Setup token", required: true },
      { name: "address", label: "Administrator's mail address", required: true, placeholder: "you@your-office.example",
        hint: "Its domain becomes the box's first mail domain." },
      { name: "display_name", label: "Your name" },
      { name: "password", label: "Password", type: "password", required: true, autocomplete: "new-password",
        hint: await passwordRules() },
      ...boxFields(state),
    ], "Create the administrator", async (v) => {
      me = await api("POST", "setup", {
        token: v.token, address: v.address, password: v.password, display_name: v.display_name || undefined,
        hostname: v.hostname, timezone: v.timezone,
      });
      // The checklist of what remains comes next, also after the restart a new name needs.
      const domain = v.address.split("@")[1];
      const next = `#/domains/${encodeURIComponent(domain)}?welcome=1`;
      if (v.hostname && v.hostname.toLowerCase() !== state.hostname) {
        keepForReturn(next);
        return restarting(v.hostname);
      }
      go(next);
    }, { id: "setup", alias: { domain: "address", uid: "address" } }));
  focusFirstField();
}

/** The box's name (unless the configuration file fixes it) and time zone, as form fields. */
function boxFields(state) {
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
  if (!zones.includes("UTC")) zones.unshift("UTC");
  const here = state.timezone !== "UTC" ? state.timezone : Intl.DateTimeFormat().resolvedOptions().timeZone;
  return [
    state.hostname_fixed ? null : { name: "hostname", label: "The box's name", value: state.hostname, required: true,
      hint: "A full name, such as mail.your-office.example: mail clients and browsers reach the box by it. A new name restarts Bureau under it." },
    { name: "timezone", label: "Time zone", type: "select", value: zones.includes(here) ? here : "UTC",
      options: zones.map((z) => [z, z.replaceAll("_", " ")]) },
  ].filter(Boolean);
}

/** Bureau restarts under a new name: wait until it answers, then sign in again. */
async function restarting(name) {
  show(h("h1", {}, "Restarting"),
    h("p", { role: "status" }, `The box is now ${name}. Bureau is restarting under that name; sign in again in a moment.`));
  await signInAfterRestart();
}

/** Waits (two minutes at most) until Bureau answers again, then shows the sign-in page. */
async function signInAfterRestart() {
  me = null;
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    try { if ((await fetch("/api/v1/setup")).ok) return go("#/login"); } catch { /* not yet */ }
  }
}

async function pageDashboard() {
  const [s, box] = await Promise.all([api("GET", "status"), api("GET", "setup")]);
  const up = (x) => h("span", { class: x.up ? "up" : "down" }, x.up ? "up" : "down");
  // The health checks ask DNS, which may take seconds: they fill in once answered.
  const health = h("section", { "aria-live": "polite", "data-health": "" }, h("p", { class: "muted" }, "Checking…"));
  const mark = { ok: ["up", "OK"], warn: ["warn", "Needs a look"], bad: ["down", "Needs action"], unknown: ["muted", "Unknown"] };
  api("GET", "health").then((checks) => health.replaceChildren(table(["Check", "State", "Detail"],
    checks.map((c) => h("tr", { "data-check": c.id }, h("td", {}, c.title),
      h("td", { class: mark[c.state][0] }, mark[c.state][1]), h("td", {}, c.detail))))))
    .catch((e) => health.replaceChildren(h("p", { class: "error" }, e.message)));
  show(h("h1", {}, s.hostname),
    h("h2", {}, "Health"), health,
    h("div", { class: "tiles" },
      [["Users", s.users], ["Domains", s.domains], ["Groups", s.groups], ["Queued mail", s.queued],
        ["Connections", s.connections], ["Memory", fmtBytes(s.memory_bytes)],
        ["Up for", `${Math.floor(s.uptime_secs / 3600)} h ${Math.floor((s.uptime_secs % 3600) / 60)} min`]]
        .map(([k, v]) => h("div", { class: "tile" }, h("b", {}, v), k))),
    s.unclean_stop ? h("p", { class: "error", role: "alert" },
      `Bureau stopped without shutting down (killed, crashed or a power cut) in the run that began ${new Date(s.unclean_stop * 1000).toLocaleString()}; it was started again. The logs tell what came before.`) : null,
    s.internal_errors ? h("p", { class: "error" },
      `${s.internal_errors} session${s.internal_errors > 1 ? "s" : ""} ended by an internal error since the start; every service went on. The logs name each.`) : null,
    h("h2", {}, "Services"),
    h("section", {}, table(["Service", "Listening on", "State"],
      s.services.map((x) => h("tr", {}, h("td", {}, x.name), h("td", {}, x.listen.join(", ")), h("td", {}, up(x)))))),
    h("h2", {}, "Recent problems"),
    h("section", {}, s.problems.length ? logTable(s.problems)
      : h("p", { class: "muted" }, "No warning or error since the box started."),
      h("p", {}, h("a", { href: "#/logs" }, "All logs →"))),
    h("p", { class: "muted" }, `Bureau ${s.version}, store schema ${s.schema_version}, data in ${s.data_dir}.`),
    form("This box", boxFields(box), "Save", async (v) => {
      const done = await api("PUT", "system/settings", { hostname: v.hostname, timezone: v.timezone });
      if (done.restarting) return restarting(v.hostname);
      await route();
      return "Saved.";
    }, { id: "box" }));
}

function logTable(entries) {
  return table(["Time", "Service", "Level", "Message"], entries.map((e) => h("tr", {},
    h("td", {}, new Date(e.time * 1000).toLocaleTimeString()), h("td", {}, e.service),
    h("td", { class: e.level === "ERROR" ? "down" : e.level === "WARN" ? "error" : "" }, e.level.toLowerCase()),
    h("td", { class: "value" }, e.message))));
}

/** The log page polls for new records while it is shown. */
let logTimer = null;

async function pageLogs(query) {
  const level = query.get("level") || "info";
  const service = query.get("service") || "";
  const journal = query.get("source") === "journal";
  const services = ["", "smtp", "imap", "dav", "activesync", "ldap", "admin", "directory", "store", "groupware", "daemons", "core", "bureau"];
  const filter = h("form", { class: "row", "data-form": "log-filter" },
    h("select", { name: "source", "aria-label": "Since" },
      [["", "since Bureau started (live)"], ["journal", "since the box booted (system journal)"]]
        .map(([v, l]) => h("option", { value: v, selected: v === (journal ? "journal" : "") }, l))),
    h("select", { name: "service", "aria-label": "Service" },
      services.map((x) => h("option", { value: x, selected: x === service }, x || "every service"))),
    h("select", { name: "level", "aria-label": "Level" },
      ["error", "warn", "info", "debug"].map((x) => h("option", { value: x, selected: x === level }, `${x} and worse`))),
    journal ? null : h("label", { class: "row" }, h("input", { type: "checkbox", name: "live", checked: true }), "live"));
  filter.addEventListener("change", () => {
    const f = new FormData(filter);
    go(`#/logs?source=${f.get("source")}&service=${encodeURIComponent(f.get("service"))}&level=${f.get("level")}`);
  });
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  show(h("h1", {}, "Logs"), filter, h("section", {}, body));
  let entries = [];
  const load = async () => {
    const after = entries.length ? entries[entries.length - 1].seq : 0;
    const more = await api("GET", `logs?after=${after}&level=${level}&service=${encodeURIComponent(service)}&limit=500${journal ? "&source=journal" : ""}`);
    if (!more.length && entries.length) return;
    entries = entries.concat(more).slice(-500);
    body.replaceChildren(entries.length ? logTable([...entries].reverse()) : h("p", { class: "muted" }, "Nothing logged at this level."));
  };
  try { await load(); } catch (e) { return body.replaceChildren(h("p", { class: "error" }, e.message)); }
  if (journal) return;
  clearInterval(logTimer);
  logTimer = setInterval(() => {
    if (!location.hash.startsWith("#/logs")) return clearInterval(logTimer);
    if (filter.elements.live.checked && !document.hidden) load().catch(() => {});
  }, 2000);
}

async function pageDomains() {
  const domains = await api("GET", "domains");
  show(h("h1", {}, "Domains"),
    h("section", {}, domains.length ? table(["Domain", ["Added", { class: "wide" }], ""],
      domains.map((d) => h("tr", {},
        h("td", {}, h("a", { href: `#/domains/${encodeURIComponent(d.name)}` }, d.name)),
        h("td", { class: "wide" }, fmtTime(d.created)),
        h("td", {}, confirmButton("Delete", `Delete ${d.name}?`, async () => {
          try { await api("DELETE", `domains/${encodeURIComponent(d.name)}`); route(); } catch (e) { alert(e.message); }
        })))))
      : h("p", { class: "muted" }, "No domain yet.")),
    form("Add a domain", [{ name: "name", label: "Domain name", required: true, placeholder: "example.com" }],
      "Add", async (v) => { await api("POST", "domains", { name: v.name }); route(); },
      { id: "domain", alias: { domain: "name" } }));
}

async function pageDomain(name, query) {
  const check = query.get("check") === "1";
  const [records, domains] = await Promise.all([
    api("GET", `domains/${encodeURIComponent(name)}/dns${check ? "?check=1" : ""}`), api("GET", "domains")]);
  const syncml = (domains.find((d) => d.name === name) || {}).syncml || { enabled: true, auth: "any" };
  const state = {
    yes: ["up", "published"], different: ["error", "published with another value"],
    no: ["down", "not published"], unknown: ["muted", "DNS could not be asked"],
  };
  const again = new URLSearchParams(query);
  again.set("check", "1");
  show(h("h1", {}, name),
    query.get("welcome") ? h("section", {},
      h("p", { class: "ok" }, "Bureau is set up. Two things remain, in any order:"),
      h("p", {}, h("b", {}, "1. DNS. "), "Publish the records below at your DNS provider, so that mail reaches the box and is trusted; then check them here."),
      h("p", {}, h("b", {}, "2. Certificate. "), "The box serves a certificate it made itself, which clients ask you to trust once. Keep it, or ",
        h("a", { href: "#/certificate" }, "upload the certificate for your box's name"), ".")) : null,
    h("h2", {}, "DNS records to publish"),
    h("section", {}, table(["Name", "Type", "Value", check ? "In DNS" : ["Why", { class: "wide" }]],
      records.map((r) => h("tr", {}, h("td", {}, h("code", {}, r.name)), h("td", {}, r.type),
        h("td", {}, h("code", { class: "value" }, r.value)),
        check ? h("td", { class: state[r.published][0] }, state[r.published][1]) : h("td", { class: "wide muted" }, r.purpose)))),
      h("button", { type: "button", class: "plain", id: "check-dns",
        onclick: () => go(`#/domains/${encodeURIComponent(name)}?${again}`) }, check ? "Check again" : "Check what is published")),
    h("p", { class: "muted" }, "A change at a DNS provider can take an hour or more to be seen everywhere."),
    form("SyncML", [
      { name: "enabled", label: "Phones and PC plug-ins may sync over SyncML", type: "checkbox", value: syncml.enabled },
      { name: "auth", label: "Sign-in", type: "select", value: syncml.auth, options: [
        ["any", "Basic or MD5"], ["basic", "Basic only"], ["md5", "MD5 only"]],
        hint: "A device that offers the other sign-in is asked once for this one, then refused." },
    ], "Save", async (v) => {
      await api("PUT", `domains/${encodeURIComponent(name)}/syncml`, { enabled: v.enabled, auth: v.auth });
      return "Saved.";
    }, { id: "syncml" }),
    h("p", {}, h("a", { href: "#/users" }, "Next: add the office's users →")));
}

async function pageUsers() {
  const users = await api("GET", "users");
  show(h("h1", {}, "Users"),
    h("section", {}, table(["User", ["Address", { class: "wide" }], "State"],
      users.map((u) => h("tr", {},
        h("td", {}, h("a", { href: `#/users/${encodeURIComponent(u.uid)}` }, u.display_name || u.uid)),
        h("td", { class: "wide" }, u.address),
        h("td", {}, u.enabled ? (u.admin ? "administrator" : "active") : h("span", { class: "down" }, "disabled")))))),
    form("Add a user", [
      { name: "address", label: "Mail address", required: true, placeholder: "name@example.com" },
      { name: "display_name", label: "Name" },
      { name: "password", label: "Password", type: "password", required: true, autocomplete: "new-password",
        hint: await passwordRules(" The user can change it later.") },
      { name: "phone", label: "Work telephone", type: "tel" },
      { name: "quota_mb", label: "Quota (MB, empty for none)", type: "number" },
      { name: "admin", label: "Administrator", type: "checkbox" },
    ], "Add the user", async (v) => {
      const u = await api("POST", "users", {
        address: v.address, display_name: v.display_name || undefined, password: v.password,
        phone: v.phone || undefined,
        quota: v.quota_mb ? Math.round(Number(v.quota_mb) * 1e6) : undefined, admin: v.admin,
      });
      go(`#/users/${encodeURIComponent(u.uid)}`);
    }, { id: "user", alias: { uid: "address", quota: "quota_mb" } }));
}

// A SyncML device's detailed session log: each message with its time, how long the box
// took to answer, the sizes both ways and what each side said.
async function pageDeviceLog(uid, id) {
  const path = `users/${encodeURIComponent(uid)}/devices/${encodeURIComponent(id)}/log`;
  const log = await api("GET", path);
  const ms = (n) => `${n} ms`;
  show(h("h1", {}, `Session log of ${id.replace(/^syncml:/, "")}`),
    h("p", {}, h("a", { href: `#/users/${encodeURIComponent(uid)}` }, `← ${uid}`)),
    h("p", { class: "muted" }, "When on, each message of this device's syncs is recorded (the last 500): what it said, "
      + "what the box answered and how long that took. Item contents and passwords are never recorded."),
    form("Recording", [
      { name: "on", label: "Record this device's sessions", type: "checkbox", value: log.on },
    ], "Save", async (v) => {
      const now = await api("PUT", path, { on: v.on });
      return now.on ? "Recording: the device's next sync will show here." : "Not recording; what was recorded stays.";
    }, { id: "devlog" }),
    log.entries.length
      ? h("section", { id: "entries" },
        table(["When", "Message", "Took", ["Size in / out", { class: "wide" }], "Device said", "Box answered"],
          log.entries.slice().reverse().map((e) => h("tr", {},
            h("td", {}, new Date(e.at_ms).toLocaleString()),
            h("td", {}, `${e.session}/${e.msg_id} (${e.encoding})`),
            h("td", {}, ms(e.took_ms)),
            h("td", { class: "wide" }, `${fmtBytes(e.bytes_in)} / ${fmtBytes(e.bytes_out)}`),
            h("td", {}, e.received),
            h("td", {}, e.sent)))),
        h("button", { class: "plain", type: "button", onclick: async () => { await api("DELETE", path); route(); } }, "Empty the log"))
      : h("p", { class: "muted", id: "entries" }, "Nothing recorded yet."));
}

async function pageUser(uid) {
  const path = `users/${encodeURIComponent(uid)}`;
  const [u, devices] = await Promise.all([api("GET", path), api("GET", `${path}/devices`)]);
  show(h("h1", {}, u.display_name || u.uid),
    h("section", {},
      h("p", {}, h("b", {}, u.address), u.aliases.length ? ` (also ${u.aliases.join(", ")})` : ""),
      h("p", {}, `Uses ${fmtBytes(u.usage_bytes)} of ${fmtBytes(u.quota)}.`,
        u.groups.length ? ` Member of ${u.groups.join(", ")}.` : "")),
    h("h2", {}, "Sign-in"),
    h("section", { id: "two-factor" }, u.two_factor
      ? h("p", {}, "Two-factor sign-in is on. ", confirmButton("Turn it off", `Turn off ${u.uid}'s two-factor sign-in (a lost phone)? Their password alone signs in again.`, async () => {
        await api("DELETE", `${path}/totp`); route();
      }))
      : h("p", { class: "muted" }, "Two-factor sign-in is off; the user turns it on from their own page.")),
    appPasswordsSection(u, path, false),
    h("h2", {}, "Phones and tablets"),
    h("section", { id: "devices" }, devices.length ? table(["Device", ["Software", { class: "wide" }], "Last seen", ""],
      devices.map((d) => h("tr", {},
        h("td", {}, d.info.FriendlyName || d.info.Model || [d.info.Man, d.info.Mod].filter(Boolean).join(" ") || d.info.type || d.id),
        h("td", { class: "wide" }, [d.info.OS || d.info.SwV, d.protocol === "syncml" ? "SyncML" : d.protocol].filter(Boolean).join(" · ")),
        h("td", {}, d.wipe_requested ? h("span", { class: "down" }, d.info.wipe_acknowledged ? "wiped" : "wipe pending") : fmtTime(d.last_seen)),
        h("td", {}, h("div", { class: "row" },
          // SyncML has no remote wipe; forgetting a SyncML device resets its anchors.
          d.protocol === "syncml"
            ? h("a", { href: `#/users/${encodeURIComponent(uid)}/devices/${encodeURIComponent(d.id)}/log` }, "Session log")
            : null,
          d.protocol === "syncml" ? null : confirmButton("Wipe", `Erase everything on ${d.info.FriendlyName || d.id} the next time it connects?`, async () => {
            await api("POST", `${path}/devices/${encodeURIComponent(d.id)}/wipe`); route();
          }),
          h("button", { class: "plain", type: "button", onclick: async () => {
            const question = d.protocol === "syncml"
              ? "Forget what this device has synced? Its next sync compares everything again (a slow sync); nothing is deleted."
              : "Forget this device? It must be set up again to sync.";
            if (confirm(question)) { await api("DELETE", `${path}/devices/${encodeURIComponent(d.id)}`); route(); }
          } }, d.protocol === "syncml" ? "Reset" : "Remove"))))))
      : h("p", { class: "muted" }, "None has synchronised over ActiveSync or SyncML yet.")),
    form("Details", [
      { name: "display_name", label: "Name", value: u.display_name },
      { name: "phone", label: "Work telephone", type: "tel", value: u.phone || "" },
      { name: "quota_mb", label: "Quota (MB, empty for none)", type: "number", value: u.quota ? u.quota / 1e6 : "" },
      { name: "enabled", label: "Account enabled", type: "checkbox", value: u.enabled },
      { name: "admin", label: "Administrator", type: "checkbox", value: u.admin },
      { name: "syncml", label: "May sync over SyncML", type: "checkbox", value: u.syncml !== false },
    ], "Save", async (v) => {
      await api("PATCH", path, {
        display_name: v.display_name, phone: v.phone, enabled: v.enabled, admin: v.admin, syncml: v.syncml,
        quota: v.quota_mb ? Math.round(Number(v.quota_mb) * 1e6) : null,
      });
      return "Saved.";
    }, { id: "details" }),
    form("Reset the password", [
      { name: "password", label: "New password", type: "password", required: true, autocomplete: "new-password",
        hint: await passwordRules() },
    ], "Set the password", async (v, ) => {
      await api("PUT", `${path}/password`, { password: v.password });
      main.querySelector("[data-form=password] input").value = "";
      return "The new password is set.";
    }, { id: "password" }),
    form("Aliases", [
      { name: "alias", label: "Add an address", placeholder: "sales@example.com", required: true },
    ], "Add the alias", async (v) => {
      await api("PATCH", path, { add_aliases: [v.alias] });
      route();
    }, { id: "alias", alias: { address: "alias", add_aliases: "alias", domain: "alias" } }),
    u.aliases.length ? h("section", {}, h("h2", {}, "Remove an alias"), h("div", { class: "row" },
      u.aliases.map((a) => h("button", {
        class: "plain", type: "button",
        onclick: async () => { await api("PATCH", path, { remove_aliases: [a] }); route(); },
      }, `Remove ${a}`)))) : null,
    h("section", {}, h("h2", {}, "Delete"),
      h("p", { class: "muted" }, "Deletes the account and all its mail, calendars and contacts."),
      confirmButton("Delete this user", `Delete ${u.address} and everything it holds?`, async () => {
        try { await api("DELETE", path); go("#/users"); } catch (e) { alert(e.message); }
      })));
}

/** The users as a checklist's options: the user name, and who it is. */
const memberOptions = (users) => users.map((u) => [u.uid, `${u.display_name || u.uid} (${u.uid}, ${u.address})`]);

async function pageGroups() {
  const [groups, users] = await Promise.all([api("GET", "groups"), api("GET", "users")]);
  show(h("h1", {}, "Groups"),
    h("section", {}, groups.length ? table(["Group", ["Address", { class: "wide" }], "Members"],
      groups.map((g) => h("tr", {},
        h("td", {}, h("a", { href: `#/groups/${encodeURIComponent(g.name)}` }, g.display_name || g.name)),
        h("td", { class: "wide" }, g.address || "—"), h("td", {}, g.members.length))))
      : h("p", { class: "muted" }, "No group yet.")),
    form("Add a group", [
      { name: "name", label: "Name", required: true, placeholder: "sales" },
      { name: "display_name", label: "Display name" },
      { name: "address", label: "Group address (mail to it reaches every member)", placeholder: "sales@example.com" },
      { name: "members", label: "Members", type: "checklist", options: memberOptions(users), empty: "No user yet." },
    ], "Add the group", async (v) => {
      const g = await api("POST", "groups", {
        name: v.name, display_name: v.display_name || undefined, address: v.address || undefined,
        members: v.members,
      });
      go(`#/groups/${encodeURIComponent(g.name)}`);
    }, { id: "group" }));
}

async function pageGroup(name) {
  const path = `groups/${encodeURIComponent(name)}`;
  const [g, colls, users] = await Promise.all([api("GET", path), api("GET", `${path}/collections`), api("GET", "users")]);
  const kinds = { mailbox: "Mailbox", calendar: "Calendar", addressbook: "Address book" };
  show(h("h1", {}, g.display_name || g.name),
    h("section", {}, h("p", {}, g.address ? `Mail to ${g.address} reaches every member.` : "No group address.")),
    form("Members", [
      { name: "members", label: "Members", type: "checklist", options: memberOptions(users), value: g.members,
        empty: "No user yet." },
    ], "Save the members", async (v) => {
      await api("PUT", `groups/${encodeURIComponent(name)}/members`, { members: v.members });
      return "Saved.";
    }, { id: "members" }),
    h("h2", {}, "Shared with the members"),
    h("section", {}, colls.length ? table(["Name", "Kind", "Items", ""], colls.map((c) => h("tr", {},
      h("td", {}, c.name), h("td", {}, kinds[c.kind] || c.kind), h("td", {}, c.items),
      h("td", {}, confirmButton("Delete", `Delete ${c.name} and everything in it?`, async () => {
        await api("DELETE", `${path}/collections/${encodeURIComponent(c.name)}`);
        route();
      })))))
      : h("p", { class: "muted" }, "Nothing yet. A shared mailbox appears in members' mail clients under Shared; a calendar or address book in their calendar and contact apps.")),
    form("Add a shared mailbox, calendar or address book", [
      { name: "kind", label: "Kind", type: "select", value: "mailbox", options: Object.entries(kinds) },
      { name: "name", label: "Name", required: true, placeholder: "Orders" },
    ], "Add it", async (v) => {
      await api("POST", `${path}/collections`, { kind: v.kind, name: v.name });
      route();
    }, { id: "group-collection" }),
    h("section", {}, confirmButton("Delete this group", `Delete the group ${g.name}?`, async () => {
      await api("DELETE", `groups/${encodeURIComponent(name)}`);
      go("#/groups");
    })));
}

const policies = {
  "accept-if-free": "Accept when free, decline a double booking",
  "auto-accept": "Accept every booking",
  manager: "A manager approves each booking",
};

async function pageRooms() {
  const rooms = await api("GET", "resources");
  show(h("h1", {}, "Rooms and equipment"),
    h("p", { class: "muted" }, "Invite a room or a piece of equipment to a meeting, from any calendar app or phone, to book it. Its answer follows its policy."),
    h("section", {}, rooms.length ? table(["Name", ["Address", { class: "wide" }], "Kind", "Capacity", "Location", "Bookings", ""],
      rooms.map((r) => h("tr", {},
        h("td", {}, r.display_name), h("td", { class: "wide" }, r.address), h("td", {}, r.resource.kind),
        h("td", {}, r.resource.capacity ?? "—"), h("td", {}, r.resource.location || "—"),
        h("td", {}, policies[r.resource.policy] + (r.resource.manager ? ` (${r.resource.manager})` : "")),
        h("td", {}, confirmButton("Delete", `Delete ${r.display_name} and its bookings?`, async () => {
          await api("DELETE", `resources/${encodeURIComponent(r.uid)}`);
          route();
        })))))
      : h("p", { class: "muted" }, "No room or equipment yet.")),
    form("Add a room or equipment", [
      { name: "address", label: "Address", required: true, placeholder: "blue-room@example.com" },
      { name: "display_name", label: "Name", placeholder: "Blue room" },
      { name: "kind", label: "Kind", type: "select", value: "room", options: [["room", "Room"], ["equipment", "Equipment"]] },
      { name: "capacity", label: "Capacity (people)", type: "number" },
      { name: "location", label: "Location", placeholder: "2nd floor" },
      { name: "policy", label: "Bookings", type: "select", value: "accept-if-free", options: Object.entries(policies) },
      { name: "manager", label: "Manager (user name, for approval)" },
      { name: "bookers", label: "Who may book it (users or groups, separated by commas; empty: everyone)" },
      { name: "external", label: "People outside the office may book it by mail", type: "checkbox" },
    ], "Add it", async (v) => {
      await api("POST", "resources", {
        address: v.address, display_name: v.display_name || undefined, kind: v.kind,
        capacity: v.capacity ? Number(v.capacity) : undefined, location: v.location || undefined,
        policy: v.policy, manager: v.manager || undefined, external: v.external,
        bookers: v.bookers ? v.bookers.split(",").map((m) => m.trim()).filter(Boolean) : [],
      });
      route();
    }, { id: "room" }));
}

async function pageQueue() {
  const q = await api("GET", "queue");
  const act = (method, path) => async () => {
    try { await api(method, path); route(); } catch (e) { alert(e.message); }
  };
  show(h("h1", {}, "Mail queue"),
    h("section", {}, q.length ? table(["Message", "To", ["Last error", { class: "wide" }], ""],
      q.map((m) => h("tr", {},
        h("td", {}, h("code", {}, m.id), h("br"), m.from || "(bounce)", h("br"),
          h("span", { class: "muted" }, `${fmtBytes(m.size)}, ${m.attempts} attempt(s)`)),
        h("td", {}, m.rcpts.map((r) => h("div", {}, `${r.address} (${r.state})`))),
        h("td", { class: "wide muted" }, m.last_error || ""),
        h("td", {}, h("div", { class: "row" },
          h("button", { class: "plain", type: "button", onclick: act("POST", `queue/${m.id}/retry`) }, "Retry"),
          confirmButton("Delete", "Delete this message without a bounce?", act("DELETE", `queue/${m.id}`)))))))
      : h("p", { class: "muted" }, "The queue is empty: every message has been delivered.")));
}

async function pageMe() {
  const base = `users/${encodeURIComponent(me.uid)}`;
  const [u, setup] = await Promise.all([api("GET", base), api("GET", `${base}/setup`)]);
  const host = setup.hostname, p = setup.ports;
  show(h("h1", {}, u.display_name || u.uid),
    form("Change your password", [
      { name: "password", label: "New password", type: "password", required: true, autocomplete: "new-password",
        hint: await passwordRules() },
    ], "Change it", async (v) => {
      await api("PUT", `${base}/password`, { password: v.password });
      main.querySelector("[data-form=own-password] input").value = "";
      return "Your password is changed.";
    }, { id: "own-password" }),
    h("h2", {}, "Two-factor sign-in"),
    twoFactorSection(u, base),
    h("h2", {}, "Application passwords"),
    appPasswordsSection(u, base, true),
    h("h2", {}, "Set up your devices"),
    h("section", { id: "servers" },
      h("p", {}, "Your address: ", h("b", {}, setup.address), ". Sign in with it and your password."),
      table(["What", "Server", "Port"], [
        ["Incoming mail (IMAP, SSL/TLS)", host, String(p.imaps)],
        ["Outgoing mail (SMTP, SSL/TLS)", host, String(p.submissions)],
        ["Outgoing mail (SMTP, STARTTLS)", host, String(p.submission)],
        ["Calendars (CalDAV)", `${setup.web}/dav/`, String(p.https)],
        ["Contacts (CardDAV)", `${setup.web}/dav/`, String(p.https)],
        ["Phones and Outlook plug-ins (SyncML)", `${setup.web}/syncml`, String(p.https)],
      ].map(([what, server, port]) => h("tr", {}, h("td", {}, what), h("td", {}, h("code", {}, server)), h("td", {}, port)))),
      h("p", {}, h("b", {}, "Thunderbird: "), "add a mail account with your address and password; it finds the settings, calendars and address books by itself."),
      h("p", {}, h("b", {}, "iPhone, iPad and Mac: "), h("a", { href: `/api/v1/${base}/mobileconfig`, download: "bureau.mobileconfig", id: "profile" }, "download the profile"), " and open it (it asks for your password once)."),
      h("p", {}, h("b", {}, "Android: "), "add the mail account in Thunderbird for Android or K-9 with the servers above, and calendars and contacts with DAVx⁵ at ", h("code", {}, `${setup.web}/dav/`), "."),
      h("p", {}, h("b", {}, "Outlook: "), "add an IMAP account with the servers above."),
      h("p", {}, h("b", {}, "SyncML (older phones, Outlook plug-ins, SyncEvolution): "), "server ",
        h("code", {}, `${setup.web}/syncml`), ", databases ", h("code", {}, "contacts"), ", ",
        h("code", {}, "calendar"), ", ", h("code", {}, "tasks"), ", ", h("code", {}, "notes"), ", ",
        h("code", {}, "journal"), ", ", h("code", {}, "files"), " (your home folder) and ", h("code", {}, "mail"), " (or ", h("code", {}, "mail/Sent"),
        " and any other folder), with your address and password. Add ", h("code", {}, "?push"),
        " to the server's address for the box to tell the phone when something changes (on the office's network)."),
      h("h2", {}, "On your phone"),
      h("p", {}, "Scan this with the phone's camera to open this page there (", h("code", {}, `${setup.web}/admin/#/me`), "):"),
      h("img", { src: `/api/v1/${base}/setup-qr.svg`, alt: "QR code of this page's address", width: 200, height: 200, id: "setup-qr" })));
}

/** The user's own two-factor sign-in: on, or set up with a QR code and a first code. */
function twoFactorSection(u, base) {
  const box = h("section", { id: "two-factor" });
  if (u.two_factor) {
    box.append(h("p", {}, h("span", { class: "up" }, "On"), ": the console asks for a code from your authenticator app. Mail, calendar and phone apps sign in with an application password (below), not your password."),
      confirmButton("Turn it off", "Turn two-factor sign-in off? Your password alone will sign in again everywhere.", async () => {
        await api("DELETE", `${base}/totp`); route();
      }));
    return box;
  }
  box.append(h("p", {}, "Off. With it on, signing in to this console needs your password and the six-digit code an authenticator app on your phone shows (FreeOTP, Aegis, Google or Microsoft Authenticator…), and mail, calendar and phone apps need an application password instead of your password. File sharing (SMB) and SyncML's MD5 sign-in keep your password."),
    h("button", { type: "button", id: "totp-start", onclick: async () => {
      const e = await api("POST", `${base}/totp`);
      box.replaceChildren(
        h("p", {}, "Scan this with the authenticator app, or type the key into it:"),
        h("img", { src: e.qr, alt: "QR code for the authenticator app", width: 200, height: 200 }),
        h("p", {}, "Key: ", h("code", { class: "value", id: "totp-secret" }, e.secret)),
        form("Confirm with a code", [
          { name: "code", label: "The code the app shows", required: true, autocomplete: "one-time-code" },
        ], "Turn it on", async (v) => {
          await api("PUT", `${base}/totp`, { code: v.code });
          route();
        }, { id: "totp-confirm" }));
    } }, "Set it up"));
  return box;
}

/** Application passwords: listed and revocable (by the user or an administrator); made
 * by the user only, shown once. */
function appPasswordsSection(u, base, own) {
  const shown = h("div", { role: "status", id: "app-password" });
  return h("section", { id: "app-passwords" },
    own ? h("p", {}, "For a mail, calendar or phone app that cannot do two-factor sign-in: each gets a password of its own, which you can revoke alone.") : null,
    shown,
    u.app_passwords.length ? table(["Name", "Made", ""], u.app_passwords.map((a) => h("tr", {},
      h("td", {}, a.name), h("td", {}, fmtTime(a.created)),
      h("td", {}, confirmButton("Revoke", `Revoke ${a.name}? The app using it is refused from its next sign-in.`, async () => {
        await api("DELETE", `${base}/app-passwords/${encodeURIComponent(a.id)}`); route();
      })))))
      : h("p", { class: "muted" }, "None yet."),
    own ? form("New application password", [
      { name: "name", label: "What uses it", required: true, placeholder: "Thunderbird at home" },
    ], "Make it", async (v) => {
      const made = await api("POST", `${base}/app-passwords`, { name: v.name });
      await route();
      document.getElementById("app-password").replaceChildren(h("p", { class: "ok" },
        `The password for ${made.name}, shown this once: `, h("code", { class: "value" }, made.password),
        " — type it in the app instead of your password."));
    }, { id: "app-password-new" }) : null);
}

async function pageDirectory() {
  const [accounts, domains] = await Promise.all([api("GET", "services"), api("GET", "domains")]);
  const base = domains.length ? domains[0].name.split(".").map((p) => `dc=${p}`).join(",") : "dc=…";
  const shown = h("div", { role: "status", id: "credentials" });
  // Written into the page shown when it is called (the page may have been drawn again).
  const credentials = (c) => document.getElementById("credentials").replaceChildren(h("section", {},
    h("p", { class: "ok" }, `The password for ${c.account.name}, shown this once:`),
    table(["", ""], [["Bind DN", c.bind_dn], ["Password", c.password]].map(([k, v]) =>
      h("tr", {}, h("th", {}, k), h("td", {}, h("code", { class: "value" }, v)))))));
  show(h("h1", {}, "Directory (LDAP)"),
    h("section", {},
      h("p", {}, "Mail clients, file servers and other applications on the office network can look people up in the box's directory, and check passwords against it, over LDAP with TLS:"),
      table(["", ""], [["Server", `ldaps://${location.hostname}:636 (or ldap://…:389 with StartTLS)`], ["Base DN", base],
        ["People", `ou=people,${base}`], ["Groups", `ou=groups,${base}`]].map(([k, v]) =>
        h("tr", {}, h("th", {}, k), h("td", {}, h("code", { class: "value" }, v))))),
      h("p", { class: "muted" }, "People sign in with their own address and password. An application that only reads gets an account of its own below.")),
    shown,
    h("h2", {}, "Application accounts"),
    h("section", {}, accounts.length ? table(["Name", "What uses it", ""], accounts.map((a) => h("tr", {},
      h("td", {}, a.name), h("td", {}, a.description || "—"),
      h("td", {}, h("div", { class: "row" },
        h("button", { class: "plain", type: "button", onclick: async () => {
          if (confirm(`Give ${a.name} a new password? The application must be told it.`)) {
            credentials(await api("POST", `services/${encodeURIComponent(a.name)}/password`));
          }
        } }, "New password"),
        confirmButton("Delete", `Delete the account ${a.name}?`, async () => {
          await api("DELETE", `services/${encodeURIComponent(a.name)}`);
          route();
        }))))))
      : h("p", { class: "muted" }, "None yet.")),
    form("Add an application account", [
      { name: "name", label: "Name", required: true, placeholder: "wiki" },
      { name: "description", label: "What uses it", placeholder: "The office wiki" },
    ], "Add it", async (v) => {
      const c = await api("POST", "services", { name: v.name, description: v.description || undefined });
      await route();
      credentials(c);
    }, { id: "service" }));
}

async function pageCertificate() {
  const c = await api("GET", "certificate");
  const acme = await api("GET", "certificate/acme");
  const days = Math.floor((c.not_after * 1000 - Date.now()) / 86400000);
  const what = { "self-signed": "A self-signed certificate made by the box: mail clients and browsers will ask whether to trust it.",
    uploaded: "The certificate you uploaded.", configured: "The certificate files named in the configuration file.",
    acme: "A certificate from the certificate authority below, renewed by the box 30 days before it ends." }[c.source];
  show(h("h1", {}, "Certificate"),
    h("section", {},
      h("p", {}, what),
      table(["", ""], [["Names", c.names.join(", ") || c.subject], ["Issued by", c.issuer],
        ["Valid until", `${fmtTime(c.not_after)} (${days} days)`]].map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
      c.source === "uploaded" ? h("div", {}, confirmButton("Go back to the self-signed certificate",
        "Serve the box's self-signed certificate again?", async () => { await api("DELETE", "certificate"); route(); })) : null),
    c.source === "configured" ? null : form("Let's Encrypt", [
      { name: "enabled", label: "Get the certificate for this box's name from a certificate authority, and renew it by itself", type: "checkbox", value: acme.settings.enabled },
      { name: "email", label: "Your e-mail address (the authority writes to it before a certificate ends)", type: "email", value: acme.settings.email },
      { name: "directory", label: "Authority's ACME address (empty: Let's Encrypt)", value: acme.settings.directory,
        hint: "The box's name must lead to this box from the Internet, on port 80, for the authority to check it." },
    ], "Save and get the certificate", async (v) => {
      const st = await api("PUT", "certificate/acme", { enabled: v.enabled, email: v.email, directory: v.directory });
      await route();
      return st.settings.enabled ? "Obtained: every service serves it now." : "Saved.";
    }, { id: "acme" }),
    acme.last_error ? h("p", { class: "error", id: "acme-last-error" }, `The last attempt failed: ${acme.last_error}`) : null,
    c.source === "configured" ? null : form("Upload a certificate", [
      { name: "cert_pem", label: "Certificate (PEM, the server's first, then the intermediates)", type: "textarea",
        placeholder: "-----BEGIN CERTIFICATE-----", required: true },
      { name: "key_pem", label: "Private key (PEM)", type: "textarea", placeholder: "-----BEGIN PRIVATE KEY-----", required: true },
    ], "Install it", async (v) => {
      await api("PUT", "certificate", { cert_pem: v.cert_pem, key_pem: v.key_pem });
      await route();
      return "Installed: every service serves it now.";
    }, { id: "certificate" }));
}

async function pageBackups() {
  const sched = await api("GET", "backup/schedule");
  const st = sched.state;
  const last = st.last_good ? `The last good one: ${st.last_good[0]}, ${fmtTime(st.last_good[1])}.` : "None has been taken yet.";
  show(h("h1", {}, "Backups"),
    form("Every day, somewhere else", [
      { name: "enabled", label: "Back up every day, and check each backup after writing it", type: "checkbox", value: st.settings.enabled },
      { name: "folder", label: "Where backups go: usb, or a folder where the office's share is mounted", value: st.settings.folder,
        hint: "usb: the disk labelled BUREAU-BACKUP plugged into the box (the box mounts it). A folder: not inside the box's own data, where a backup is lost with the box." },
      { name: "hour", label: "Hour of the day (UTC)", type: "number", value: String(st.settings.hour) },
      { name: "keep_days", label: "Days kept", type: "number", value: String(st.settings.keep_days) },
    ], "Save", async (v) => {
      await api("PUT", "backup/schedule", { enabled: v.enabled, folder: v.folder, hour: Number(v.hour), keep_days: Number(v.keep_days) });
      return "Saved.";
    }, { id: "schedule" }),
    h("section", {},
      h("p", { id: "schedule-last" }, last),
      st.last_error ? h("p", { class: "error" }, `The last attempt failed: ${st.last_error}`) : null,
      st.settings.folder ? h("div", {}, confirmButton("Back up now", "Take a backup into the folder now?", async () => {
        await api("POST", "backup/schedule/run"); route(); })) : null,
      sched.archives.length ? table(["Backup", "Taken", "Size", ""], sched.archives.map((a) => h("tr", {},
        h("td", {}, a.name), h("td", {}, fmtTime(a.taken)), h("td", {}, `${Math.round(a.size / 1024)} KiB`),
        h("td", {}, confirmButton("Restore", `Replace everything on the box with ${a.name}?`, async () => {
          await api("POST", `backup/schedule/${encodeURIComponent(a.name)}/restore`);
          await signInAfterRestart();
        }))))) : null),
    h("section", {},
      h("p", {}, "A backup is one archive of everything the box holds: users and groups, mail, calendars, contacts, shares and settings. It is taken while the box keeps working."),
      h("p", {}, h("a", { href: "/api/v1/backup", download: "", id: "download-backup" }, "Download a backup now")),
      h("p", { class: "muted" }, "Keep it somewhere other than the box: it holds everyone's mail, and the password hashes.")),
    restoreForm(),
    h("section", {}, h("h2", {}, "Restore on the box itself"),
      h("p", {}, "Or, with the service stopped, into an empty data directory:"),
      h("pre", {}, "systemctl stop bureau\nmv /var/lib/bureau /var/lib/bureau.old\nbureau backup restore bureau-backup-….tar.gz\nsystemctl start bureau")));
}

function restoreForm() {
  const file = h("input", { type: "file", id: "restore-file", accept: ".gz,.tgz,application/gzip" });
  const status = h("p", { role: "status", "aria-live": "polite" });
  const f = h("form", { class: "card", "data-form": "restore" },
    h("h2", {}, "Restore"),
    h("p", {}, "Put a backup in place of everything the box holds now. The archive is checked whole first (every file against its hash): a damaged one changes nothing. Then Bureau restarts with it, and everyone signs in again. What it replaces is kept on the box, not deleted."),
    h("label", { for: "restore-file" }, "Backup archive (.tar.gz)"), file, status,
    h("button", { type: "submit", class: "danger" }, "Restore this backup"));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.className = "";
    if (!file.files.length) { status.className = "error"; status.textContent = "Choose the archive first."; return; }
    if (!confirm("Replace everything on the box with this backup?")) return;
    status.textContent = "Uploading and checking…";
    try {
      const info = await api("POST", "backup", file.files[0]);
      status.className = "ok";
      status.textContent = `The backup taken ${fmtTime(info.created)} is checked. Bureau is restarting with it…`;
      await signInAfterRestart();
    } catch (e) {
      status.className = "error";
      status.textContent = e.message;
    }
  });
  return f;
}

// The box's system: its two root slots (what runs, what is installed where, what the
// health check confirmed), an update to install, failed units, a reboot.
async function pageSystem() {
  const sys = await api("GET", "system");
  const words = { good: "good (confirmed)", pending: "on trial until its health check passes", bad: "failed; not booted again",
    empty: "empty: nothing installed yet" };
  const file = h("input", { type: "file", id: "update-file", accept: ".raucb" });
  const status = h("p", { role: "status", "aria-live": "polite" });
  const upload = h("form", { class: "card", "data-form": "update" },
    h("h2", {}, "Install an update"),
    h("p", {}, "An update bundle (.raucb, signed for this box) goes into the slot that is not running; the box starts it at the next reboot, and goes back to the slot it runs now if the update does not come up."),
    h("label", { for: "update-file" }, "Update bundle (.raucb)"), file, status,
    h("button", { type: "submit" }, "Install"));
  upload.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.className = "";
    if (!file.files.length) { status.className = "error"; status.textContent = "Choose the bundle first."; return; }
    status.textContent = "Uploading and installing (a few minutes)…";
    try {
      status.textContent = (await api("PUT", "system/update", file.files[0])).message;
      status.className = "ok";
    } catch (e) {
      status.className = "error";
      status.textContent = e.message;
    }
  });
  show(h("h1", {}, "System"),
    h("section", {},
      h("p", {}, `Release ${sys.release || "(not running from the appliance image)"}; time zone ${sys.timezone}.`),
      sys.boot_time ? h("p", { class: "muted" }, `Last boot: ${sys.boot_time.replace(/^Startup finished in /, "")}.`) : null,
      sys.slot_summary.length
        ? table(["Slot", "Running", "State", "Version", ["Installed", { class: "wide" }]], sys.slot_summary.map((sl) => h("tr", {},
          h("td", {}, sl.bootname), h("td", {}, sl.state === "booted" ? "yes" : "no"),
          h("td", { class: sl.status === "bad" ? "down" : sl.status === "good" ? "up" : null }, words[sl.status] || sl.status),
          h("td", {}, sl.version || "—"), h("td", { class: "wide" }, sl.installed ? new Date(sl.installed).toLocaleString() : "—"))))
        : h("p", { class: "muted" }, `The slots are unknown: ${sys.helper_error || "no answer"}.`),
      sys.failed_units === null ? null : sys.failed_units.length
        ? h("p", { class: "error" }, `Failed system units: ${sys.failed_units.join(", ")}. The logs say why.`)
        : h("p", { class: "ok" }, "Every system unit runs as it should.")),
    upload,
    h("section", {}, h("h2", {}, "Restart the box"),
      confirmButton("Reboot now", "Reboot the box? Everyone is disconnected for a minute or two.", async () => {
        try { await api("POST", "system/reboot"); await signInAfterRestart(); } catch (e) { alert(e.message); }
      })));
}

/** Lines of a textarea, trimmed, without the empty ones. */
const lines = (t) => t.split("\n").map((l) => l.trim()).filter(Boolean);

async function pageFiles() {
  const [state, groups] = await Promise.all([api("GET", "samba"), api("GET", "groups")]);
  let daemon;
  try { daemon = await api("GET", "samba/status"); } catch (e) { daemon = { error: e.message }; }
  const s = state.settings;
  const last = state.last;
  show(h("h1", {}, "File server"),
    h("section", {},
      h("p", {}, "The office's Windows file shares (Samba), with everyone's own address and password. Accounts follow the users here by themselves: new, disabled, deleted and new passwords reach the file server at once."),
      table(["", ""], [
        ["File server", daemon.error ? daemon.error : daemon.running ? `running, ${daemon.sessions.length} connected` : "not running"],
        ["Shares", s.enabled ? [s.homes ? "a home folder per user" : null, ...s.shares.map((x) => `\\${location.hostname}\\${x.name} (${x.group})`), s.public ? "public" : null].filter(Boolean).join(", ") || "none" : "not set up yet"],
        ["Last brought in line", last ? (last.error ? `failed: ${last.error}` : `${fmtTime(last.at)}: ${last.report.users} accounts`) : "—"],
      ].map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
      last?.report?.skipped?.length ? h("p", { class: "error" }, last.report.skipped.map(([u, why]) => `${u} left out: ${why}`).join("; ")) : null),
    form("Shares", [
      { name: "workgroup", label: "Workgroup", value: s.workgroup, required: true },
      { name: "homes", label: "A home folder for each user", type: "checkbox", value: s.homes },
      { name: "public", label: "A \"public\" share everyone may use", type: "checkbox", value: s.public },
      { name: "shares", label: "Group shares, one per line: share name, then the group", type: "textarea",
        value: s.shares.map((x) => `${x.name} ${x.group}`).join("\n"), placeholder: "sales sales",
        hint: `Groups: ${groups.map((g) => g.name).join(", ") || "none yet"}. Only the group's members may use its share.` },
    ], "Apply", async (v) => {
      const shares = lines(v.shares).map((l) => { const [name, group = ""] = l.split(/\s+/); return { name, group }; });
      let done;
      try {
        done = await api("PUT", "samba", { enabled: true, workgroup: v.workgroup, homes: v.homes, public: v.public, shares });
      } catch (e) {
        if (e.field?.startsWith("shares")) e.field = "shares";
        throw e;
      }
      await route();
      return done.report.reloaded
        ? `Applied: the file server has the new shares (${done.report.users} accounts).`
        : { error: "Saved, but the file server did not take the new shares yet: it is not running." };
    }, { id: "samba" }));
}

async function pageProxy() {
  const [s, sum] = await Promise.all([api("GET", "proxy"), api("GET", "proxy/summary")]);
  const top = (title, rows) => h("div", {}, h("h2", {}, title), rows.length
    ? table(["", "Requests"], rows.map(([k, n]) => h("tr", {}, h("td", {}, k), h("td", {}, String(n)))))
    : h("p", { class: "muted" }, "None."));
  show(h("h1", {}, "Web proxy"),
    h("section", {},
      h("p", {}, `The office's web proxy (Squid): ${sum.requests} requests in its log, ${sum.denied} refused.`),
      top("Top users", sum.top_users), top("Top sites", sum.top_domains), top("Most refused", sum.top_denied_domains)),
    form("Settings", [
      { name: "networks", label: "Networks that may use it", value: s.networks.join(" "), required: true,
        hint: "CIDR blocks or addresses, separated by spaces; \"lan\" for the private ranges." },
      { name: "authenticate", label: "People sign in with their address and password", type: "checkbox", value: s.authenticate },
      { name: "blocked", label: "Blocked sites, one per line (with their subdomains)", type: "textarea", value: s.blocked.join("\n") },
      { name: "rules", label: "Group rules, one per line: group, allow or deny, then sites", type: "textarea",
        value: s.rules.map((r) => `${r.group} ${r.action} ${r.domains.join(" ")}`).join("\n"), placeholder: "interns deny youtube.com" },
    ], "Apply", async (v) => {
      const rules = lines(v.rules).map((l) => { const [group, action, ...domains] = l.split(/\s+/); return { group, action, domains }; });
      let done;
      try {
        done = await api("PUT", "proxy", { networks: v.networks.split(/\s+/).filter(Boolean), authenticate: v.authenticate, blocked: lines(v.blocked), rules });
      } catch (e) {
        if (e.field?.startsWith("rules")) e.field = "rules";
        throw e;
      }
      await route();
      return done.reloaded
        ? "Applied: the web proxy has the new settings."
        : { error: `Saved, but not in effect yet. ${done.note}.` };
    }, { id: "proxy" }));
}

// ---- routing ----

const adminPages = [["#/", "Dashboard"], ["#/domains", "Domains"], ["#/users", "Users"], ["#/groups", "Groups"], ["#/rooms", "Rooms"], ["#/queue", "Mail queue"], ["#/directory", "Directory"], ["#/files", "File server"], ["#/proxy", "Web proxy"], ["#/logs", "Logs"], ["#/certificate", "Certificate"], ["#/backups", "Backups"], ["#/system", "System"]];

function drawNav() {
  const here = location.hash.split("?")[0].split("/").slice(0, 2).join("/") || "#/";
  const links = me ? [...(me.admin ? adminPages : []), ["#/me", "My account"]] : [];
  nav.replaceChildren(...links.map(([href, label]) =>
    (here === href || (href !== "#/" && here.startsWith(href)))
      ? h("a", { href, class: "here", "aria-current": "page" }, label)
      : h("a", { href }, label)));
  who.replaceChildren(me ? h("span", {}, `${me.uid} · `, h("a", {
    href: "#/login", onclick: async (ev) => {
      ev.preventDefault();
      try { await api("DELETE", "session"); } catch { /* signed out anyway */ }
      me = null;
      go("#/login");
    },
  }, "Sign out")) : "");
}

async function route() {
  const [path, qs] = (location.hash || "#/").slice(1).split("?");
  const query = new URLSearchParams(qs || "");
  const seg = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (!me && seg[0] !== "setup") {
    try { me = await api("GET", "session"); } catch { me = null; }
  }
  drawNav();
  try {
    if (seg[0] === "setup") return await pageSetup();
    if (!me && seg[0] !== "login") keepForReturn(location.hash);
    if (!me || seg[0] === "login") return await pageLogin(query);
    if (seg[0] === "me" || !me.admin) return await pageMe();
    switch (seg[0]) {
      case undefined: return await pageDashboard();
      case "domains": return seg[1] ? await pageDomain(seg[1], query) : await pageDomains();
      case "users":
        if (seg[2] === "devices" && seg[4] === "log") return await pageDeviceLog(seg[1], seg[3]);
        return seg[1] ? await pageUser(seg[1]) : await pageUsers();
      case "groups": return seg[1] ? await pageGroup(seg[1]) : await pageGroups();
      case "rooms": return await pageRooms();
      case "queue": return await pageQueue();
      case "backups": return await pageBackups();
      case "system": return await pageSystem();
      case "logs": return await pageLogs(query);
      case "certificate": return await pageCertificate();
      case "directory": return await pageDirectory();
      case "files": return await pageFiles();
      case "proxy": return await pageProxy();
      default: show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the dashboard")));
    }
  } catch (e) {
    if (e.status === 401) return;
    show(h("h1", {}, "Something went wrong"), h("p", { class: "error" }, e.message));
  } finally {
    drawNav();
  }
}

window.addEventListener("hashchange", route);
route();
