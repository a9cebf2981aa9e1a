// Bureau's console: a small single-page app on the JSON admin API (docs/admin-api.md).
// No build step and no dependencies: the daemon embeds this directory as it is.
// Every text from the server goes into the page as text (never as HTML).

// ---- words ----

// Every text the console shows is in one catalogue per language (i18n/<language>.json), by
// key, with {names} for what is filled in. The language is the one chosen in the header,
// else the browser's first the console has, else English.
const LANGUAGES = ["en", "fr"];
const lang = [localStorage.getItem("bureau-lang"), ...(navigator.languages || [navigator.language])]
  .map((l) => (l || "").slice(0, 2).toLowerCase()).find((l) => LANGUAGES.includes(l)) || "en";
const words = await (await fetch(`/admin/i18n/${lang}.json`)).json();
document.documentElement.lang = lang;
for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);

/** A text of the catalogue, its {names} filled in from `vars`. */
function t(key, vars = {}) {
  return (words[key] ?? key).replace(/\{(\w+)\}/g, (m, n) => (n in vars ? String(vars[n]) : m));
}

/** What the server said as a catalogue key and its values ({key, args}), in our words. */
const said = (s) => t(s.key, s.args || {});

// The language switch, in the header: the choice is kept in this browser.
document.querySelector("header").append(h("select", {
  id: "lang", "aria-label": t("language"),
  onchange: (ev) => { localStorage.setItem("bureau-lang", ev.target.value); location.reload(); },
}, LANGUAGES.map((l) => h("option", { value: l, lang: l, selected: l === lang }, t(`lang_${l}`)))));

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

/** The signed-in session: {uid, admin, csrf}, or null. */
let me = null;

// ---- the API ----

class ApiError extends Error {
  constructor(status, body) {
    super(body?.key ? said(body) : body?.error || t("request_failed", { status }));
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
  headers["Accept-Language"] = lang;
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
  return t("at_least_characters_not_containing_the", { minPassword, extra });
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
  if (n === null || n === undefined) return t("unlimited");
  const u = ["unit_b", "unit_kb", "unit_mb", "unit_gb", "unit_tb"].map((k) => t(k));
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  const digits = i ? 1 : 0;
  return `${n.toLocaleString(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${u[i]}`;
};
const fmtTime = (secs) => fmtDate(new Date(secs * 1000));
/** A time as people of the console's language write it. */
const fmtDate = (d) => d.toLocaleString(lang);

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
          : h("p", { class: "muted" }, fd.empty || t("nothing_to_choose_from_yet")));
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
        : i.type === "checkbox" ? i.checked : i.type === "password" ? i.value : i.value.trim();
    }
    for (const fd of fields) {
      if (fd.required && !values[fd.name]) {
        errors[fd.name].textContent = t("is_needed", { label: fd.label });
        inputs[fd.name].classList.add("invalid");
        inputs[fd.name].setAttribute("aria-invalid", "true");
        return;
      }
    }
    submitButton.disabled = true;
    submitButton.setAttribute("aria-busy", "true");
    submitButton.textContent = t("working");
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
      return h("th", attrs, label === "" ? h("span", { class: "sr-only" }, t("actions")) : label);
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
  show(h("h1", {}, t("sign_in")),
    query.get("expired") && kept ? h("p", { class: "error", role: "alert" },
      t("your_session_has_ended_sign_in")) : null,
    form("", step2 ? [
      { name: "code", label: t("code_from_your_authenticator_app"), required: true, autocomplete: "one-time-code",
        hint: t("two_factor_sign_in_is_on", { login: step2.login }) },
    ] : [
      { name: "login", label: t("address_or_user_name"), required: true, autocomplete: "username" },
      { name: "password", label: t("password"), type: "password", required: true, autocomplete: "current-password" },
    ], t("sign_in"), async (v) => {
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
      t("sign_in_as_someone_else"))) : null);
  focusFirstField();
}

async function pageSetup() {
  const state = await api("GET", "setup");
  if (!state.pending) return go("#/login");
  show(h("h1", {}, t("set_up_bureau")),
    h("p", {}, t("the_setup_token_is_shown_on"),
      h("code", {}, "bureau setup-token"), t("on_the_box_this_makes_the")),
    form("", [
      { name: "token", label: t("setup_token"), required: true },
      { name: "address", label: t("administrators_mail_address"), required: true, placeholder: "you@your-office.example",
        hint: t("its_domain_becomes_the_boxs_first") },
      { name: "display_name", label: t("your_name") },
      { name: "password", label: t("password"), type: "password", required: true, autocomplete: "new-password",
        hint: await passwordRules() },
      ...boxFields(state),
    ], t("create_the_administrator"), async (v) => {
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
    state.hostname_fixed ? null : { name: "hostname", label: t("the_boxs_name"), value: state.hostname, required: true,
      hint: t("a_full_name_such_as_mail") },
    { name: "timezone", label: t("time_zone"), type: "select", value: zones.includes(here) ? here : "UTC",
      options: zones.map((z) => [z, z.replaceAll("_", " ")]) },
  ].filter(Boolean);
}

/** Bureau restarts under a new name: wait until it answers, then sign in again. */
async function restarting(name) {
  show(h("h1", {}, t("restarting")),
    h("p", { role: "status" }, t("the_box_is_now_bureau_is", { name })));
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
  const up = (x) => h("span", { class: x.up ? "up" : "down" }, x.up ? t("state_up") : t("state_down"));
  // The health checks ask DNS, which may take seconds: they fill in once answered.
  const health = h("section", { "aria-live": "polite", "data-health": "" }, h("p", { class: "muted" }, t("checking")));
  const mark = { ok: ["up", t("state_ok")], warn: ["warn", t("needs_a_look")], bad: ["down", t("needs_action")], unknown: ["muted", t("unknown")] };
  api("GET", "health").then((checks) => health.replaceChildren(table([t("check"), t("state"), t("detail")],
    checks.map((c) => h("tr", { "data-check": c.id }, h("td", {}, c.title),
      h("td", { class: mark[c.state][0] }, mark[c.state][1]), h("td", {}, c.detail))))))
    .catch((e) => health.replaceChildren(h("p", { class: "error" }, e.message)));
  show(h("h1", {}, s.hostname),
    h("h2", {}, t("health")), health,
    h("div", { class: "tiles" },
      [[t("users"), s.users], [t("domains"), s.domains], [t("groups"), s.groups], [t("queued_mail"), s.queued],
        [t("connections"), s.connections], [t("memory"), fmtBytes(s.memory_bytes)],
        [t("up_for"), t("h_min", { p: Math.floor(s.uptime_secs / 3600), p2: Math.floor((s.uptime_secs % 3600) / 60) })]]
        .map(([k, v]) => h("div", { class: "tile" }, h("b", {}, v), k))),
    s.unclean_stop ? h("p", { class: "error", role: "alert" },
      t("bureau_stopped_without_shutting_down_killed", { p: fmtTime(s.unclean_stop) })) : null,
    s.internal_errors ? h("p", { class: "error" },
      s.internal_errors > 1 ? t("sessions_ended_by_an_internal_error", { internal_errors: s.internal_errors })
        : t("session_ended_by_an_internal_error", { internal_errors: s.internal_errors })) : null,
    h("h2", {}, t("services")),
    h("section", {}, table([t("service"), t("listening_on"), t("state")],
      s.services.map((x) => h("tr", {}, h("td", {}, x.name), h("td", {}, x.listen.join(", ")), h("td", {}, up(x)))))),
    h("h2", {}, t("recent_problems")),
    h("section", {}, s.problems.length ? logTable(s.problems)
      : h("p", { class: "muted" }, t("no_warning_or_error_since_the")),
      h("p", {}, h("a", { href: "#/logs" }, t("all_logs")))),
    h("p", { class: "muted" }, t("bureau_store_schema_data_in", { version: s.version, schema_version: s.schema_version, data_dir: s.data_dir })),
    form(t("this_box"), boxFields(box), t("save"), async (v) => {
      const done = await api("PUT", "system/settings", { hostname: v.hostname, timezone: v.timezone });
      if (done.restarting) return restarting(v.hostname);
      await route();
      return t("saved");
    }, { id: "box" }));
}

function logTable(entries) {
  return table([t("time"), t("service"), t("level"), t("message")], entries.map((e) => h("tr", {},
    h("td", {}, new Date(e.time * 1000).toLocaleTimeString(lang)), h("td", {}, e.service),
    h("td", { class: e.level === "ERROR" ? "down" : e.level === "WARN" ? "error" : "" }, t(`level_${e.level.toLowerCase()}`)),
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
    h("select", { name: "source", "aria-label": t("since") },
      [["", t("since_bureau_started_live")], ["journal", t("since_the_box_booted_system_journal")]]
        .map(([v, l]) => h("option", { value: v, selected: v === (journal ? "journal" : "") }, l))),
    h("select", { name: "service", "aria-label": t("service") },
      services.map((x) => h("option", { value: x, selected: x === service }, x || t("every_service")))),
    h("select", { name: "level", "aria-label": t("level") },
      ["error", "warn", "info", "debug"].map((x) => h("option", { value: x, selected: x === level }, t("and_worse", { x: t(`level_${x}`) })))),
    journal ? null : h("label", { class: "row" }, h("input", { type: "checkbox", name: "live", checked: true }), "live"));
  filter.addEventListener("change", () => {
    const f = new FormData(filter);
    go(`#/logs?source=${f.get("source")}&service=${encodeURIComponent(f.get("service"))}&level=${f.get("level")}`);
  });
  const body = h("div", {}, h("p", { class: "muted" }, t("loading")));
  show(h("h1", {}, t("logs")), filter, h("section", {}, body));
  let entries = [];
  const load = async () => {
    const after = entries.length ? entries[entries.length - 1].seq : 0;
    const more = await api("GET", `logs?after=${after}&level=${level}&service=${encodeURIComponent(service)}&limit=500${journal ? "&source=journal" : ""}`);
    if (!more.length && entries.length) return;
    entries = entries.concat(more).slice(-500);
    body.replaceChildren(entries.length ? logTable([...entries].reverse()) : h("p", { class: "muted" }, t("nothing_logged_at_this_level")));
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
  show(h("h1", {}, t("domains")),
    h("section", {}, domains.length ? table([t("domain"), [t("added"), { class: "wide" }], ""],
      domains.map((d) => h("tr", {},
        h("td", {}, h("a", { href: `#/domains/${encodeURIComponent(d.name)}` }, d.name)),
        h("td", { class: "wide" }, fmtTime(d.created)),
        h("td", {}, confirmButton(t("delete"), t("delete_2", { name: d.name }), async () => {
          try { await api("DELETE", `domains/${encodeURIComponent(d.name)}`); route(); } catch (e) { alert(e.message); }
        })))))
      : h("p", { class: "muted" }, t("no_domain_yet"))),
    form(t("add_a_domain"), [{ name: "name", label: t("domain_name"), required: true, placeholder: "example.com" }],
      t("add"), async (v) => { await api("POST", "domains", { name: v.name }); route(); },
      { id: "domain", alias: { domain: "name" } }));
}

async function pageDomain(name, query) {
  const check = query.get("check") === "1";
  const [records, domains] = await Promise.all([
    api("GET", `domains/${encodeURIComponent(name)}/dns${check ? "?check=1" : ""}`), api("GET", "domains")]);
  const syncml = (domains.find((d) => d.name === name) || {}).syncml || { enabled: true, auth: "any" };
  const state = {
    yes: ["up", "published"], different: ["error", t("published_with_another_value")],
    no: ["down", t("not_published")], unknown: ["muted", t("dns_could_not_be_asked")],
  };
  const again = new URLSearchParams(query);
  again.set("check", "1");
  show(h("h1", {}, name),
    query.get("welcome") ? h("section", {},
      h("p", { class: "ok" }, t("bureau_is_set_up_two_things")),
      h("p", {}, h("b", {}, t("step_dns")), t("publish_the_records_below_at_your")),
      h("p", {}, h("b", {}, t("2_certificate")), t("the_box_serves_a_certificate_it"),
        h("a", { href: "#/certificate" }, t("upload_the_certificate_for_your_boxs")), ".")) : null,
    h("h2", {}, t("dns_records_to_publish")),
    h("section", {}, table([t("name"), t("type"), t("value"), check ? t("in_dns") : [t("why"), { class: "wide" }]],
      records.map((r) => h("tr", {}, h("td", {}, h("code", {}, r.name)), h("td", {}, r.type),
        h("td", {}, h("code", { class: "value" }, r.value)),
        check ? h("td", { class: state[r.published][0] }, state[r.published][1]) : h("td", { class: "wide muted" }, said(r.purpose))))),
      h("button", { type: "button", class: "plain", id: "check-dns",
        onclick: () => go(`#/domains/${encodeURIComponent(name)}?${again}`) }, check ? t("check_again") : t("check_what_is_published"))),
    h("p", { class: "muted" }, t("a_change_at_a_dns_provider")),
    form("SyncML", [
      { name: "enabled", label: t("phones_and_pc_plug_ins_may"), type: "checkbox", value: syncml.enabled },
      { name: "auth", label: t("sign_in_2"), type: "select", value: syncml.auth, options: [
        ["any", t("basic_or_md5")], ["basic", t("basic_only")], ["md5", t("md5_only")]],
        hint: t("a_device_that_offers_the_other") },
    ], t("save"), async (v) => {
      await api("PUT", `domains/${encodeURIComponent(name)}/syncml`, { enabled: v.enabled, auth: v.auth });
      return t("saved");
    }, { id: "syncml" }),
    h("p", {}, h("a", { href: "#/users" }, t("next_add_the_offices_users"))));
}

async function pageUsers() {
  const users = await api("GET", "users");
  show(h("h1", {}, t("users")),
    h("section", {}, table([t("user"), [t("address"), { class: "wide" }], t("state")],
      users.map((u) => h("tr", {},
        h("td", {}, h("a", { href: `#/users/${encodeURIComponent(u.uid)}` }, u.display_name || u.uid)),
        h("td", { class: "wide" }, u.address),
        h("td", {}, u.enabled ? (u.admin ? t("user_administrator") : t("user_active")) : h("span", { class: "down" }, t("user_disabled"))))))),
    form(t("add_a_user"), [
      { name: "address", label: t("mail_address"), required: true, placeholder: "name@example.com" },
      { name: "display_name", label: t("name") },
      { name: "password", label: t("password"), type: "password", required: true, autocomplete: "new-password",
        hint: await passwordRules(t("the_user_can_change_it_later")) },
      { name: "phone", label: t("work_telephone"), type: "tel" },
      { name: "quota_mb", label: t("quota_mb_empty_for_none"), type: "number" },
      { name: "admin", label: t("administrator"), type: "checkbox" },
    ], t("add_the_user"), async (v) => {
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
  const ms = (n) => t("ms", { n });
  show(h("h1", {}, t("session_log_of", { p: id.replace(/^syncml:/, "") })),
    h("p", {}, h("a", { href: `#/users/${encodeURIComponent(uid)}` }, `← ${uid}`)),
    h("p", { class: "muted" }, t("when_on_each_message_of_this")
      + t("what_the_box_answered_and_how")),
    form(t("recording"), [
      { name: "on", label: t("record_this_devices_sessions"), type: "checkbox", value: log.on },
    ], t("save"), async (v) => {
      const now = await api("PUT", path, { on: v.on });
      return now.on ? t("recording_the_devices_next_sync_will") : t("not_recording_what_was_recorded_stays");
    }, { id: "devlog" }),
    log.entries.length
      ? h("section", { id: "entries" },
        table([t("when"), t("message"), t("took"), [t("size_in_out"), { class: "wide" }], t("device_said"), t("box_answered")],
          log.entries.slice().reverse().map((e) => h("tr", {},
            h("td", {}, fmtDate(new Date(e.at_ms))),
            h("td", {}, `${e.session}/${e.msg_id} (${e.encoding})`),
            h("td", {}, ms(e.took_ms)),
            h("td", { class: "wide" }, `${fmtBytes(e.bytes_in)} / ${fmtBytes(e.bytes_out)}`),
            h("td", {}, e.received),
            h("td", {}, e.sent)))),
        h("button", { class: "plain", type: "button", onclick: async () => { await api("DELETE", path); route(); } }, t("empty_the_log")))
      : h("p", { class: "muted", id: "entries" }, t("nothing_recorded_yet")));
}

async function pageUser(uid) {
  const path = `users/${encodeURIComponent(uid)}`;
  const [u, devices] = await Promise.all([api("GET", path), api("GET", `${path}/devices`)]);
  show(h("h1", {}, u.display_name || u.uid),
    h("section", {},
      h("p", {}, h("b", {}, u.address), u.aliases.length ? t("also", { p: u.aliases.join(", ") }) : ""),
      h("p", {}, t("uses_of", { usage_bytes: fmtBytes(u.usage_bytes), quota: fmtBytes(u.quota) }),
        u.groups.length ? t("member_of", { p: u.groups.join(", ") }) : "")),
    h("h2", {}, t("sign_in_2")),
    h("section", { id: "two-factor" }, u.two_factor
      ? h("p", {}, t("two_factor_sign_in_is_on_2"), confirmButton(t("turn_it_off"), t("turn_off_s_two_factor_sign", { uid: u.uid }), async () => {
        await api("DELETE", `${path}/totp`); route();
      }))
      : h("p", { class: "muted" }, t("two_factor_sign_in_is_off"))),
    appPasswordsSection(u, path, false),
    h("h2", {}, t("phones_and_tablets")),
    h("section", { id: "devices" }, devices.length ? table([t("device"), [t("software"), { class: "wide" }], t("last_seen"), ""],
      devices.map((d) => h("tr", {},
        h("td", {}, d.info.FriendlyName || d.info.Model || [d.info.Man, d.info.Mod].filter(Boolean).join(" ") || d.info.type || d.id),
        h("td", { class: "wide" }, [d.info.OS || d.info.SwV, d.protocol === "syncml" ? "SyncML" : d.protocol].filter(Boolean).join(" · ")),
        h("td", {}, d.wipe_requested ? h("span", { class: "down" }, (d.info.wipe_acknowledged ? t("wiped") : t("wipe_pending"))) : fmtTime(d.last_seen)),
        h("td", {}, h("div", { class: "row" },
          // SyncML has no remote wipe; forgetting a SyncML device resets its anchors.
          d.protocol === "syncml"
            ? h("a", { href: `#/users/${encodeURIComponent(uid)}/devices/${encodeURIComponent(d.id)}/log` }, t("session_log"))
            : null,
          d.protocol === "syncml" ? null : confirmButton(t("wipe"), t("erase_everything_on_the_next_time", { p: d.info.FriendlyName || d.id }), async () => {
            await api("POST", `${path}/devices/${encodeURIComponent(d.id)}/wipe`); route();
          }),
          h("button", { class: "plain", type: "button", onclick: async () => {
            const question = d.protocol === "syncml"
              ? t("forget_what_this_device_has_synced")
              : t("forget_this_device_it_must_be");
            if (confirm(question)) { await api("DELETE", `${path}/devices/${encodeURIComponent(d.id)}`); route(); }
          } }, d.protocol === "syncml" ? t("reset") : t("remove")))))))
      : h("p", { class: "muted" }, t("none_has_synchronised_over_activesync_or"))),
    form(t("details"), [
      { name: "display_name", label: t("name"), value: u.display_name },
      { name: "phone", label: t("work_telephone"), type: "tel", value: u.phone || "" },
      { name: "quota_mb", label: t("quota_mb_empty_for_none"), type: "number", value: u.quota ? u.quota / 1e6 : "" },
      { name: "enabled", label: t("account_enabled"), type: "checkbox", value: u.enabled },
      { name: "admin", label: t("administrator"), type: "checkbox", value: u.admin },
      { name: "syncml", label: t("may_sync_over_syncml"), type: "checkbox", value: u.syncml !== false },
    ], t("save"), async (v) => {
      await api("PATCH", path, {
        display_name: v.display_name, phone: v.phone, enabled: v.enabled, admin: v.admin, syncml: v.syncml,
        quota: v.quota_mb ? Math.round(Number(v.quota_mb) * 1e6) : null,
      });
      return t("saved");
    }, { id: "details", alias: { quota: "quota_mb" } }),
    form(t("reset_the_password"), [
      { name: "password", label: t("new_password"), type: "password", required: true, autocomplete: "new-password",
        hint: await passwordRules() },
    ], t("set_the_password"), async (v, ) => {
      await api("PUT", `${path}/password`, { password: v.password });
      main.querySelector("[data-form=password] input").value = "";
      return t("the_new_password_is_set");
    }, { id: "password" }),
    form(t("aliases"), [
      { name: "alias", label: t("add_an_address"), placeholder: "sales@example.com", required: true },
    ], t("add_the_alias"), async (v) => {
      await api("PATCH", path, { add_aliases: [v.alias] });
      route();
    }, { id: "alias", alias: { address: "alias", add_aliases: "alias", domain: "alias" } }),
    u.aliases.length ? h("section", {}, h("h2", {}, t("remove_an_alias")), h("div", { class: "row" },
      u.aliases.map((a) => h("button", {
        class: "plain", type: "button",
        onclick: async () => { await api("PATCH", path, { remove_aliases: [a] }); route(); },
      }, t("remove_2", { a }))))) : null,
    h("section", {}, h("h2", {}, t("delete")),
      h("p", { class: "muted" }, t("deletes_the_account_and_all_its")),
      confirmButton(t("delete_this_user"), t("delete_and_everything_it_holds", { address: u.address }), async () => {
        try { await api("DELETE", path); go("#/users"); } catch (e) { alert(e.message); }
      })));
}

/** The users as a checklist's options: the user name, and who it is. */
const memberOptions = (users) => users.map((u) => [u.uid, `${u.display_name || u.uid} (${u.uid}, ${u.address})`]);

async function pageGroups() {
  const [groups, users] = await Promise.all([api("GET", "groups"), api("GET", "users")]);
  show(h("h1", {}, t("groups")),
    h("section", {}, groups.length ? table([t("group"), [t("address"), { class: "wide" }], t("members")],
      groups.map((g) => h("tr", {},
        h("td", {}, h("a", { href: `#/groups/${encodeURIComponent(g.name)}` }, g.display_name || g.name)),
        h("td", { class: "wide" }, g.address || "—"), h("td", {}, g.members.length))))
      : h("p", { class: "muted" }, t("no_group_yet"))),
    form(t("add_a_group"), [
      { name: "name", label: t("name"), required: true, placeholder: "sales" },
      { name: "display_name", label: t("display_name") },
      { name: "address", label: t("group_address_mail_to_it_reaches"), placeholder: "sales@example.com" },
      { name: "members", label: t("members"), type: "checklist", options: memberOptions(users), empty: t("no_user_yet") },
    ], t("add_the_group"), async (v) => {
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
  const kinds = { mailbox: t("mailbox"), calendar: t("calendar"), addressbook: t("address_book") };
  show(h("h1", {}, g.display_name || g.name),
    h("section", {}, h("p", {}, g.address ? t("mail_to_reaches_every_member", { address: g.address }) : t("no_group_address"))),
    form(t("members"), [
      { name: "members", label: t("members"), type: "checklist", options: memberOptions(users), value: g.members,
        empty: t("no_user_yet") },
    ], t("save_the_members"), async (v) => {
      await api("PUT", `groups/${encodeURIComponent(name)}/members`, { members: v.members });
      return t("saved");
    }, { id: "members" }),
    h("h2", {}, t("shared_with_the_members")),
    h("section", {}, colls.length ? table([t("name"), t("kind"), t("items"), ""], colls.map((c) => h("tr", {},
      h("td", {}, c.name), h("td", {}, kinds[c.kind] || c.kind), h("td", {}, c.items),
      h("td", {}, confirmButton(t("delete"), t("delete_and_everything_in_it", { name: c.name }), async () => {
        await api("DELETE", `${path}/collections/${encodeURIComponent(c.name)}`);
        route();
      })))))
      : h("p", { class: "muted" }, t("nothing_yet_a_shared_mailbox_appears"))),
    form(t("add_a_shared_mailbox_calendar_or"), [
      { name: "kind", label: t("kind"), type: "select", value: "mailbox", options: Object.entries(kinds) },
      { name: "name", label: t("name"), required: true, placeholder: t("orders") },
    ], t("add_it"), async (v) => {
      await api("POST", `${path}/collections`, { kind: v.kind, name: v.name });
      route();
    }, { id: "group-collection" }),
    h("section", {}, confirmButton(t("delete_this_group"), t("delete_the_group", { name: g.name }), async () => {
      await api("DELETE", `groups/${encodeURIComponent(name)}`);
      go("#/groups");
    })));
}

const policies = {
  "accept-if-free": t("accept_when_free_decline_a_double"),
  "auto-accept": t("accept_every_booking"),
  manager: t("a_manager_approves_each_booking"),
};

async function pageRooms() {
  const rooms = await api("GET", "resources");
  show(h("h1", {}, t("rooms_and_equipment")),
    h("p", { class: "muted" }, t("invite_a_room_or_a_piece")),
    h("section", {}, rooms.length ? table([t("name"), [t("address"), { class: "wide" }], t("kind"), t("capacity"), t("location"), t("bookings"), ""],
      rooms.map((r) => h("tr", {},
        h("td", {}, r.display_name), h("td", { class: "wide" }, r.address), h("td", {}, r.resource.kind),
        h("td", {}, r.resource.capacity ?? "—"), h("td", {}, r.resource.location || "—"),
        h("td", {}, policies[r.resource.policy] + (r.resource.manager ? ` (${r.resource.manager})` : "")),
        h("td", {}, confirmButton(t("delete"), t("delete_and_its_bookings", { display_name: r.display_name }), async () => {
          await api("DELETE", `resources/${encodeURIComponent(r.uid)}`);
          route();
        })))))
      : h("p", { class: "muted" }, t("no_room_or_equipment_yet"))),
    form(t("add_a_room_or_equipment"), [
      { name: "address", label: t("address"), required: true, placeholder: "blue-room@example.com" },
      { name: "display_name", label: t("name"), placeholder: t("blue_room") },
      { name: "kind", label: t("kind"), type: "select", value: "room", options: [["room", t("room")], ["equipment", t("equipment")]] },
      { name: "capacity", label: t("capacity_people"), type: "number" },
      { name: "location", label: t("location"), placeholder: t("2nd_floor") },
      { name: "policy", label: t("bookings"), type: "select", value: "accept-if-free", options: Object.entries(policies) },
      { name: "manager", label: t("manager_user_name_for_approval") },
      { name: "bookers", label: t("who_may_book_it_users_or") },
      { name: "external", label: t("people_outside_the_office_may_book"), type: "checkbox" },
    ], t("add_it"), async (v) => {
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
  show(h("h1", {}, t("mail_queue")),
    h("section", {}, q.length ? table([t("message"), t("to"), [t("last_error"), { class: "wide" }], ""],
      q.map((m) => h("tr", {},
        h("td", {}, h("code", {}, m.id), h("br"), m.from || t("bounce"), h("br"),
          h("span", { class: "muted" }, t("attempt_s", { size: fmtBytes(m.size), attempts: m.attempts }))),
        h("td", {}, m.rcpts.map((r) => h("div", {}, `${r.address} (${r.state})`))),
        h("td", { class: "wide muted" }, m.last_error || ""),
        h("td", {}, h("div", { class: "row" },
          h("button", { class: "plain", type: "button", onclick: act("POST", `queue/${m.id}/retry`) }, t("retry")),
          confirmButton(t("delete"), t("delete_this_message_without_a_bounce"), act("DELETE", `queue/${m.id}`)))))))
      : h("p", { class: "muted" }, t("the_queue_is_empty_every_message"))));
}

async function pageMe() {
  const base = `users/${encodeURIComponent(me.uid)}`;
  const [u, setup] = await Promise.all([api("GET", base), api("GET", `${base}/setup`)]);
  const host = setup.hostname, p = setup.ports;
  show(h("h1", {}, u.display_name || u.uid),
    form(t("change_your_password"), [
      { name: "password", label: t("new_password"), type: "password", required: true, autocomplete: "new-password",
        hint: await passwordRules() },
    ], t("change_it"), async (v) => {
      await api("PUT", `${base}/password`, { password: v.password });
      main.querySelector("[data-form=own-password] input").value = "";
      return t("your_password_is_changed");
    }, { id: "own-password" }),
    h("h2", {}, t("two_factor_sign_in")),
    twoFactorSection(u, base),
    h("h2", {}, t("application_passwords")),
    appPasswordsSection(u, base, true),
    h("h2", {}, t("set_up_your_devices")),
    h("section", { id: "servers" },
      h("p", {}, t("your_address"), h("b", {}, setup.address), t("sign_in_with_it_and_your")),
      table([t("what"), t("server"), t("port")], [
        [t("incoming_mail_imap_ssl_tls"), host, String(p.imaps)],
        [t("outgoing_mail_smtp_ssl_tls"), host, String(p.submissions)],
        [t("outgoing_mail_smtp_starttls"), host, String(p.submission)],
        [t("calendars_caldav"), `${setup.web}/dav/`, String(p.https)],
        [t("contacts_carddav"), `${setup.web}/dav/`, String(p.https)],
        [t("phones_and_outlook_plug_ins_syncml"), `${setup.web}/syncml`, String(p.https)],
      ].map(([what, server, port]) => h("tr", {}, h("td", {}, what), h("td", {}, h("code", {}, server)), h("td", {}, port)))),
      h("p", {}, h("b", {}, t("thunderbird")), t("add_a_mail_account_with_your")),
      h("p", {}, h("b", {}, t("iphone_ipad_and_mac")), h("a", { href: `/api/v1/${base}/mobileconfig`, download: "bureau.mobileconfig", id: "profile" }, t("download_the_profile")), t("and_open_it_it_asks_for")),
      h("p", {}, h("b", {}, t("android")), t("add_the_mail_account_in_thunderbird"), h("code", {}, `${setup.web}/dav/`), "."),
      h("p", {}, h("b", {}, t("outlook")), t("add_an_imap_account_with_the")),
      h("p", {}, h("b", {}, t("syncml_older_phones_outlook_plug_ins")), t("server_"),
        h("code", {}, `${setup.web}/syncml`), t("databases"), h("code", {}, "contacts"), ", ",
        h("code", {}, "calendar"), ", ", h("code", {}, "tasks"), ", ", h("code", {}, "notes"), ", ",
        h("code", {}, "journal"), ", ", h("code", {}, "files"), t("your_home_folder_and"), h("code", {}, "mail"), t("or_"), h("code", {}, "mail/Sent"),
        t("and_any_other_folder_with_your"), h("code", {}, "?push"),
        t("to_the_servers_address_for_the")),
      h("h2", {}, t("on_your_phone")),
      h("p", {}, t("scan_this_with_the_phones_camera"), h("code", {}, `${setup.web}/admin/#/me`), "):"),
      h("img", { src: `/api/v1/${base}/setup-qr.svg`, alt: t("qr_code_of_this_pages_address"), width: 200, height: 200, id: "setup-qr" })));
}

/** The user's own two-factor sign-in: on, or set up with a QR code and a first code. */
function twoFactorSection(u, base) {
  const box = h("section", { id: "two-factor" });
  if (u.two_factor) {
    box.append(h("p", {}, h("span", { class: "up" }, t("on")), t("the_console_asks_for_a_code")),
      confirmButton(t("turn_it_off"), t("turn_two_factor_sign_in_off"), async () => {
        await api("DELETE", `${base}/totp`); route();
      }));
    return box;
  }
  box.append(h("p", {}, t("off_with_it_on_signing_in")),
    h("button", { type: "button", id: "totp-start", onclick: async () => {
      const e = await api("POST", `${base}/totp`);
      box.replaceChildren(
        h("p", {}, t("scan_this_with_the_authenticator_app")),
        h("img", { src: e.qr, alt: t("qr_code_for_the_authenticator_app"), width: 200, height: 200 }),
        h("p", {}, t("key"), h("code", { class: "value", id: "totp-secret" }, e.secret)),
        form(t("confirm_with_a_code"), [
          { name: "code", label: t("the_code_the_app_shows"), required: true, autocomplete: "one-time-code" },
        ], t("turn_it_on"), async (v) => {
          await api("PUT", `${base}/totp`, { code: v.code });
          route();
        }, { id: "totp-confirm" }));
    } }, t("set_it_up")));
  return box;
}

/** Application passwords: listed and revocable (by the user or an administrator); made
 * by the user only, shown once. */
function appPasswordsSection(u, base, own) {
  const shown = h("div", { role: "status", id: "app-password" });
  return h("section", { id: "app-passwords" },
    own ? h("p", {}, t("for_a_mail_calendar_or_phone")) : null,
    shown,
    u.app_passwords.length ? table([t("name"), t("made"), ""], u.app_passwords.map((a) => h("tr", {},
      h("td", {}, a.name), h("td", {}, fmtTime(a.created)),
      h("td", {}, confirmButton(t("revoke"), t("revoke_the_app_using_it_is", { name: a.name }), async () => {
        await api("DELETE", `${base}/app-passwords/${encodeURIComponent(a.id)}`); route();
      })))))
      : h("p", { class: "muted" }, t("none_yet")),
    own ? form(t("new_application_password"), [
      { name: "name", label: t("what_uses_it"), required: true, placeholder: t("thunderbird_at_home") },
    ], t("make_it"), async (v) => {
      const made = await api("POST", `${base}/app-passwords`, { name: v.name });
      await route();
      document.getElementById("app-password").replaceChildren(h("p", { class: "ok" },
        t("the_password_for_shown_this_once", { name: made.name }), h("code", { class: "value" }, made.password),
        t("type_it_in_the_app_instead")));
    }, { id: "app-password-new" }) : null);
}

async function pageDirectory() {
  const [accounts, domains] = await Promise.all([api("GET", "services"), api("GET", "domains")]);
  const base = domains.length ? domains[0].name.split(".").map((p) => `dc=${p}`).join(",") : "dc=…";
  const shown = h("div", { role: "status", id: "credentials" });
  // Written into the page shown when it is called (the page may have been drawn again).
  const credentials = (c) => document.getElementById("credentials").replaceChildren(h("section", {},
    h("p", { class: "ok" }, t("the_password_for_shown_this_once_2", { name: c.account.name })),
    table(["", ""], [[t("bind_dn"), c.bind_dn], [t("password"), c.password]].map(([k, v]) =>
      h("tr", {}, h("th", {}, k), h("td", {}, h("code", { class: "value" }, v)))))));
  show(h("h1", {}, t("directory_ldap")),
    h("section", {},
      h("p", {}, t("mail_clients_file_servers_and_other")),
      table(["", ""], [[t("server"), t("ldaps_636_or_ldap_389_with", { hostname: location.hostname })], [t("base_dn"), base],
        [t("people"), `ou=people,${base}`], [t("groups"), `ou=groups,${base}`]].map(([k, v]) =>
        h("tr", {}, h("th", {}, k), h("td", {}, h("code", { class: "value" }, v))))),
      h("p", { class: "muted" }, t("people_sign_in_with_their_own"))),
    shown,
    h("h2", {}, t("application_accounts")),
    h("section", {}, accounts.length ? table([t("name"), t("what_uses_it"), ""], accounts.map((a) => h("tr", {},
      h("td", {}, a.name), h("td", {}, a.description || "—"),
      h("td", {}, h("div", { class: "row" },
        h("button", { class: "plain", type: "button", onclick: async () => {
          if (confirm(t("give_a_new_password_the_application", { name: a.name }))) {
            credentials(await api("POST", `services/${encodeURIComponent(a.name)}/password`));
          }
        } }, t("new_password")),
        confirmButton(t("delete"), t("delete_the_account", { name: a.name }), async () => {
          await api("DELETE", `services/${encodeURIComponent(a.name)}`);
          route();
        }))))))
      : h("p", { class: "muted" }, t("none_yet"))),
    form(t("add_an_application_account"), [
      { name: "name", label: t("name"), required: true, placeholder: "wiki" },
      { name: "description", label: t("what_uses_it"), placeholder: t("the_office_wiki") },
    ], t("add_it"), async (v) => {
      const c = await api("POST", "services", { name: v.name, description: v.description || undefined });
      await route();
      credentials(c);
    }, { id: "service" }));
}

async function pageCertificate() {
  const c = await api("GET", "certificate");
  const acme = await api("GET", "certificate/acme");
  const days = Math.floor((c.not_after * 1000 - Date.now()) / 86400000);
  const what = { "self-signed": t("a_self_signed_certificate_made_by"),
    uploaded: t("the_certificate_you_uploaded"), configured: t("the_certificate_files_named_in_the"),
    acme: t("a_certificate_from_the_certificate_authority") }[c.source];
  show(h("h1", {}, t("certificate")),
    h("section", {},
      h("p", {}, what),
      table(["", ""], [[t("names"), c.names.join(", ") || c.subject], [t("issued_by"), c.issuer],
        [t("valid_until"), t("days", { not_after: fmtTime(c.not_after), days })]].map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
      c.source === "uploaded" ? h("div", {}, confirmButton(t("go_back_to_the_self_signed"),
        t("serve_the_boxs_self_signed_certificate"), async () => { await api("DELETE", "certificate"); route(); })) : null),
    c.source === "configured" ? null : form("Let's Encrypt", [
      { name: "enabled", label: t("get_the_certificate_for_this_boxs"), type: "checkbox", value: acme.settings.enabled },
      { name: "email", label: t("your_e_mail_address_the_authority"), type: "email", value: acme.settings.email },
      { name: "directory", label: t("authoritys_acme_address_empty_lets_encrypt"), value: acme.settings.directory,
        hint: t("the_boxs_name_must_lead_to") },
    ], t("save_and_get_the_certificate"), async (v) => {
      const st = await api("PUT", "certificate/acme", { enabled: v.enabled, email: v.email, directory: v.directory });
      await route();
      return st.settings.enabled ? t("obtained_every_service_serves_it_now") : t("saved");
    }, { id: "acme" }),
    acme.last_error ? h("p", { class: "error", id: "acme-last-error" }, t("the_last_attempt_failed", { last_error: said(acme.last_error) })) : null,
    c.source === "configured" ? null : form(t("upload_a_certificate"), [
      { name: "cert_pem", label: t("certificate_pem_the_servers_first_then"), type: "textarea",
        placeholder: "-----BEGIN CERTIFICATE-----", required: true },
      { name: "key_pem", label: t("private_key_pem"), type: "textarea", placeholder: "-----BEGIN PRIVATE KEY-----", required: true },
    ], t("install_it"), async (v) => {
      await api("PUT", "certificate", { cert_pem: v.cert_pem, key_pem: v.key_pem });
      await route();
      return t("installed_every_service_serves_it_now");
    }, { id: "certificate" }));
}

async function pageBackups() {
  const sched = await api("GET", "backup/schedule");
  const st = sched.state;
  const share = st.settings.share || { server: "", share: "", user: "", domain: "" };
  const exp = st.settings.export || { server: "", path: "" };
  const last = st.last_good ? t("the_last_good_one", { p: st.last_good[0], p2: fmtTime(st.last_good[1]) }) : t("none_has_been_taken_yet");
  show(h("h1", {}, t("backups")),
    form(t("every_day_somewhere_else"), [
      { name: "enabled", label: t("back_up_every_day_and_check"), type: "checkbox", value: st.settings.enabled },
      { name: "folder", label: t("where_backups_go_usb_or_a"), value: st.settings.folder,
        hint: t("usb_the_disk_labelled_bureau_backup") },
      { name: "share_server", label: t("share_server"), value: share.server },
      { name: "share_share", label: t("share_name"), value: share.share },
      { name: "share_user", label: t("share_user"), value: share.user },
      { name: "share_domain", label: t("share_domain"), value: share.domain },
      { name: "share_password", label: t("share_password"), type: "password", autocomplete: "new-password",
        hint: t("share_password_hint") },
      { name: "export_server", label: t("export_server"), value: exp.server },
      { name: "export_path", label: t("export_path"), value: exp.path, hint: t("export_path_hint", { uid: sched.uid }) },
      { name: "hour", label: t("hour_of_the_day_utc"), type: "number", value: String(st.settings.hour) },
      { name: "keep_days", label: t("days_kept"), type: "number", value: String(st.settings.keep_days) },
    ], t("save"), async (v) => {
      const login = v.folder === "smb" ? { server: v.share_server, share: v.share_share, user: v.share_user,
        domain: v.share_domain, password: v.share_password } : null;
      const nfs = v.folder === "nfs" ? { server: v.export_server, path: v.export_path } : null;
      await api("PUT", "backup/schedule", { enabled: v.enabled, folder: v.folder, share: login, export: nfs,
        hour: Number(v.hour), keep_days: Number(v.keep_days) });
      return t("saved");
    }, { id: "schedule", alias: Object.fromEntries([
      ...["server", "share", "user", "domain", "password"].map((f) => [`share.${f}`, `share_${f}`]),
      ...["server", "path"].map((f) => [`export.${f}`, `export_${f}`])]) }),
    h("section", {},
      h("p", { id: "schedule-last" }, last),
      st.last_error ? h("p", { class: "error" }, t("the_last_attempt_failed", { last_error: said(st.last_error) })) : null,
      st.settings.folder ? h("div", {}, confirmButton(t("back_up_now"), t("take_a_backup_into_the_folder"), async () => {
        await api("POST", "backup/schedule/run"); route(); })) : null,
      sched.archives.length ? table([t("backup"), t("taken"), t("size"), ""], sched.archives.map((a) => h("tr", {},
        h("td", {}, a.name), h("td", {}, fmtTime(a.taken)), h("td", {}, t("kib", { p: Math.round(a.size / 1024) })),
        h("td", {}, confirmButton(t("restore"), t("replace_everything_on_the_box_with", { name: a.name }), async () => {
          await api("POST", `backup/schedule/${encodeURIComponent(a.name)}/restore`);
          await signInAfterRestart();
        }))))) : null),
    h("section", {},
      h("p", {}, t("a_backup_is_one_archive_of")),
      h("p", {}, h("a", { href: "/api/v1/backup", download: "", id: "download-backup" }, t("download_a_backup_now"))),
      h("p", { class: "muted" }, t("keep_it_somewhere_other_than_the"))),
    restoreForm(),
    h("section", {}, h("h2", {}, t("restore_on_the_box_itself")),
      h("p", {}, t("or_with_the_service_stopped_into")),
      h("pre", {}, "systemctl stop bureau\nmv /var/lib/bureau /var/lib/bureau.old\nbureau backup restore bureau-backup-….tar.gz\nsystemctl start bureau")));
}

function restoreForm() {
  const file = h("input", { type: "file", id: "restore-file", accept: ".gz,.tgz,application/gzip" });
  const status = h("p", { role: "status", "aria-live": "polite" });
  const f = h("form", { class: "card", "data-form": "restore" },
    h("h2", {}, t("restore")),
    h("p", {}, t("put_a_backup_in_place_of")),
    h("label", { for: "restore-file" }, t("backup_archive_tar_gz")), file, status,
    h("button", { type: "submit", class: "danger" }, t("restore_this_backup")));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.className = "";
    if (!file.files.length) { status.className = "error"; status.textContent = t("choose_the_archive_first"); return; }
    if (!confirm(t("replace_everything_on_the_box_with_2"))) return;
    status.textContent = t("uploading_and_checking");
    try {
      const info = await api("POST", "backup", file.files[0]);
      status.className = "ok";
      status.textContent = t("the_backup_taken_is_checked_bureau", { created: fmtTime(info.created) });
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
  const words = { good: t("good_confirmed"), pending: t("on_trial_until_its_health_check"), bad: t("failed_not_booted_again"),
    empty: t("empty_nothing_installed_yet") };
  const file = h("input", { type: "file", id: "update-file", accept: ".raucb" });
  const status = h("p", { role: "status", "aria-live": "polite" });
  const upload = h("form", { class: "card", "data-form": "update" },
    h("h2", {}, t("install_an_update")),
    h("p", {}, t("an_update_bundle_raucb_signed_for")),
    h("label", { for: "update-file" }, t("update_bundle_raucb")), file, status,
    h("button", { type: "submit" }, t("install")));
  upload.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.className = "";
    if (!file.files.length) { status.className = "error"; status.textContent = t("choose_the_bundle_first"); return; }
    status.textContent = t("uploading_and_installing_a_few_minutes");
    try {
      await api("PUT", "system/update", file.files[0]);
      status.textContent = t("update_installed");
      status.className = "ok";
    } catch (e) {
      status.className = "error";
      status.textContent = e.message;
    }
  });
  show(h("h1", {}, t("system")),
    h("section", {},
      h("p", {}, t("release_time_zone", { p: sys.release || t("not_running_from_the_appliance_image"), timezone: sys.timezone })),
      sys.boot_time ? h("p", { class: "muted" }, t("last_boot", { p: sys.boot_time.replace(/^Startup finished in /, "") })) : null,
      sys.slot_summary.length
        ? table([t("slot"), t("running"), t("state"), t("version"), [t("installed"), { class: "wide" }]], sys.slot_summary.map((sl) => h("tr", {},
          h("td", {}, sl.bootname), h("td", {}, (sl.state === "booted" ? t("yes") : t("no"))),
          h("td", { class: sl.status === "bad" ? "down" : sl.status === "good" ? "up" : null }, words[sl.status] || sl.status),
          h("td", {}, sl.version || "—"), h("td", { class: "wide" }, sl.installed ? fmtDate(new Date(sl.installed)) : "—"))))
        : h("p", { class: "muted" }, t("the_slots_are_unknown", { p: sys.helper_error || t("no_answer") })),
      sys.failed_units === null ? null : sys.failed_units.length
        ? h("p", { class: "error" }, t("failed_system_units_the_logs_say", { p: sys.failed_units.join(", ") }))
        : h("p", { class: "ok" }, t("every_system_unit_runs_as_it"))),
    upload,
    h("section", {}, h("h2", {}, t("restart_the_box")),
      confirmButton(t("reboot_now"), t("reboot_the_box_everyone_is_disconnected"), async () => {
        try { await api("POST", "system/reboot"); await signInAfterRestart(); } catch (e) { alert(e.message); }
      }), " ",
      confirmButton(t("shut_down"), t("shut_the_box_down_it_stays_off"), async () => {
        try {
          await api("POST", "system/poweroff");
          me = null;
          drawNav();
          show(h("h1", {}, t("the_box_is_shutting_down")), h("p", {}, t("it_stays_off_until_its_power")));
        } catch (e) { alert(e.message); }
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
  show(h("h1", {}, t("file_server")),
    h("section", {},
      h("p", {}, t("the_offices_windows_file_shares_samba")),
      table(["", ""], [
        [t("file_server"), daemon.error ? daemon.error : daemon.running ? t("running_connected", { length: daemon.sessions.length }) : t("not_running")],
        [t("shares"), s.enabled ? [s.homes ? t("a_home_folder_per_user") : null, ...s.shares.map((x) => `\\${location.hostname}\\${x.name} (${x.group})`), s.public ? "public" : null].filter(Boolean).join(", ") || t("no_shares") : t("not_set_up_yet")],
        [t("last_brought_in_line"), last ? (last.error ? t("failed", { error: last.error }) : t("accounts", { at: fmtTime(last.at), users: last.report.users })) : "—"],
      ].map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
      last?.report?.skipped?.length ? h("p", { class: "error" }, last.report.skipped.map(([u, why]) => t("left_out", { u, why })).join("; ")) : null),
    form(t("shares"), [
      { name: "workgroup", label: t("workgroup"), value: s.workgroup, required: true },
      { name: "homes", label: t("a_home_folder_for_each_user"), type: "checkbox", value: s.homes },
      { name: "public", label: t("a_public_share_everyone_may_use"), type: "checkbox", value: s.public },
      { name: "shares", label: t("group_shares_one_per_line_share"), type: "textarea",
        value: s.shares.map((x) => `${x.name} ${x.group}`).join("\n"), placeholder: "sales sales",
        hint: t("groups_only_the_groups_members_may", { p: groups.map((g) => g.name).join(", ") || t("none_yet_2") }) },
    ], t("apply"), async (v) => {
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
        ? t("applied_the_file_server_has_the", { users: done.report.users })
        : { error: t("saved_but_the_file_server_did") };
    }, { id: "samba" }));
}

async function pageProxy() {
  const [s, sum] = await Promise.all([api("GET", "proxy"), api("GET", "proxy/summary")]);
  const top = (title, rows) => h("div", {}, h("h2", {}, title), rows.length
    ? table(["", t("requests")], rows.map(([k, n]) => h("tr", {}, h("td", {}, k), h("td", {}, String(n)))))
    : h("p", { class: "muted" }, t("none")));
  show(h("h1", {}, t("web_proxy")),
    h("section", {},
      h("p", {}, t("the_offices_web_proxy_squid_requests", { requests: sum.requests, denied: sum.denied })),
      top(t("top_users"), sum.top_users), top(t("top_sites"), sum.top_domains), top(t("most_refused"), sum.top_denied_domains)),
    form(t("settings"), [
      { name: "networks", label: t("networks_that_may_use_it"), value: s.networks.join(" "), required: true,
        hint: t("cidr_blocks_or_addresses_separated_by") },
      { name: "authenticate", label: t("people_sign_in_with_their_address"), type: "checkbox", value: s.authenticate },
      { name: "blocked", label: t("blocked_sites_one_per_line_with"), type: "textarea", value: s.blocked.join("\n") },
      { name: "rules", label: t("group_rules_one_per_line_group"), type: "textarea",
        value: s.rules.map((r) => `${r.group} ${r.action} ${r.domains.join(" ")}`).join("\n"), placeholder: "interns deny youtube.com" },
    ], t("apply"), async (v) => {
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
        ? t("applied_the_web_proxy_has_the")
        : { error: t("saved_but_not_in_effect_yet", { note: said(done.note) }) };
    }, { id: "proxy" }));
}

// ---- routing ----

const adminPages = [["#/", t("dashboard")], ["#/domains", t("domains")], ["#/users", t("users")], ["#/groups", t("groups")], ["#/rooms", t("rooms")], ["#/queue", t("mail_queue")], ["#/directory", t("directory")], ["#/files", t("file_server")], ["#/proxy", t("web_proxy")], ["#/logs", t("logs")], ["#/certificate", t("certificate")], ["#/backups", t("backups")], ["#/system", t("system")]];

function drawNav() {
  const here = location.hash.split("?")[0].split("/").slice(0, 2).join("/") || "#/";
  const links = me ? [...(me.admin ? adminPages : []), ["#/me", t("my_account")]] : [];
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
  }, t("sign_out"))) : "");
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
      default: show(h("h1", {}, t("not_found")), h("p", {}, h("a", { href: "#/" }, t("back_to_the_dashboard"))));
    }
  } catch (e) {
    if (e.status === 401) return;
    show(h("h1", {}, t("something_went_wrong")), h("p", { class: "error" }, e.message));
  } finally {
    drawNav();
  }
}

window.addEventListener("hashchange", route);
route();
