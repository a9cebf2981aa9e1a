// Walks Bureau's console in French, as an office whose browser says French sees it: the
// wizard, then every page of the navigation and each kind of detail page, a field error,
// and the language switch both ways. On each page no text, label, placeholder or hint the
// English catalogue has (and the French one words otherwise) may show, the page says it is
// French (lang), and axe-core finds nothing.
// Usage: node walk-fr.mjs BASE_URL SETUP_TOKEN SCREENSHOT_DIR.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const en = JSON.parse(readFileSync(new URL("../../web-admin/i18n/en.json", import.meta.url)));
const fr = JSON.parse(readFileSync(new URL("../../web-admin/i18n/fr.json", import.meta.url)));

const [base, token, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "fr-FR", viewport: { width: 1100, height: 800 } });
const page = await context.newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
});

// The English texts the French catalogue words otherwise, as patterns (a {name} is any text).
const english = Object.entries(en)
  .filter(([k, v]) => fr[k] !== v && /[A-Za-z]{2}/.test(v.replace(/\{\w+\}/g, "")))
  .map(([, v]) => v.trim())
  .filter((v) => v.length > 1)
  .map((v) => new RegExp(`^${v.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{\w+\\?\}/g, ".*")}$`));

let n = 0;
const seen = new Set();
/** Checks the page drawn now: its language, its words, axe-core; and photographs it. */
const check = async (name) => {
  n += 1;
  await page.screenshot({ path: `${shots}/${String(n).padStart(2, "0")}-fr-${name}.png`, fullPage: true });
  const texts = await page.evaluate(() => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      // Code, addresses and what the server wrote are not the console's words.
      if (node.parentElement.closest("code, pre, script, style, noscript")) continue;
      const t = node.textContent.trim();
      if (t) out.push(t);
    }
    for (const e of document.querySelectorAll("[placeholder], [aria-label], [title]")) {
      for (const a of ["placeholder", "aria-label", "title"]) if (e.getAttribute(a)) out.push(e.getAttribute(a).trim());
    }
    out.push(document.title.replace(/ · Bureau$/, ""));
    return { texts: out, lang: document.documentElement.lang };
  });
  if (texts.lang !== "fr") problems.push(`${name}: the page says it is in ${texts.lang}`);
  for (const t of texts.texts) {
    if (english.some((re) => re.test(t))) problems.push(`${name}: English text "${t}"`);
  }
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] }))
    .violations.map((v) => `${v.id}: ${v.help}`));
  for (const v of found) problems.push(`axe on ${name}: ${v}`);
  seen.add(name);
};
const expect = (cond, what) => { if (!cond) throw new Error(`expected: ${what}`); };
const heading = (t) => page.waitForSelector(`h1:text-is("${t}")`, { timeout: 10000 });
const fill = async (form, values) => {
  for (const [k, v] of Object.entries(values)) {
    const input = page.locator(`form[data-form=${form}] [name=${k}]`);
    if (typeof v === "boolean") await input.setChecked(v);
    else await input.fill(v);
  }
  await page.locator(`form[data-form=${form}] button[type=submit]`).click();
};
/** Opens a page of the console and waits until its heading is drawn. */
const visit = async (hash, title, name) => {
  await page.goto(`${base}/admin/${hash}`);
  await heading(title);
  // The dashboard's health checks fill in once DNS answered.
  await page.waitForFunction(() => !document.body.innerText.includes("Vérification…"), null, { timeout: 30000 });
  await check(name);
};

try {
  // The wizard, chosen in French by the browser's language alone.
  await page.goto(`${base}/`);
  await heading("Installer Bureau");
  await check("setup");
  // A field left empty is told in French beside it.
  await fill("setup", { token: "", address: "patron@bureau.example", password: "assez long pour" });
  await page.waitForFunction(() => document.querySelector("#f-setup-token-error")?.textContent);
  expect((await page.locator("#f-setup-token-error").innerText()).includes("à remplir"), "a French field error");
  await check("setup-field-error");
  // The server's refusal too: said in French beside the field.
  await fill("setup", { token: "0000-0000" });
  await page.waitForFunction(() => document.querySelector("#f-setup-token-error")?.textContent.includes("jeton"));
  expect((await page.locator("#f-setup-token-error").innerText()).includes("jeton d'installation erroné"),
    "the server's refusal in French");
  await check("setup-wrong-token");
  await fill("setup", { token, address: "patron@bureau.example", display_name: "Patron", password: "assez long pour" });
  await heading("bureau.example");
  await check("domain-welcome");

  // A user, a group and a room to show on their pages.
  await visit("#/users", "Utilisateurs", "users");
  await fill("user", { address: "claire@bureau.example", display_name: "Claire Martin", password: "un autre secret" });
  await heading("Claire Martin");
  await visit("#/groups", "Groupes", "groups");
  await fill("group", { name: "ventes" });
  await heading("ventes");

  // A negative quota: the server's words for what it expects, in French.
  await visit("#/users/claire", "Claire Martin", "user-before");
  await fill("details", { quota_mb: "-5" });
  await page.waitForFunction(() => document.querySelector("#f-details-quota_mb-error")?.textContent);
  expect((await page.locator("#f-details-quota_mb-error").innerText()).includes("nombre entier"),
    "a French field error from the server");
  await check("user-bad-quota");

  for (const [hash, title, name] of [
    ["#/", "", "dashboard"], ["#/domains", "Domaines", "domains"], ["#/users/claire", "Claire Martin", "user"],
    ["#/groups/ventes", "ventes", "group"], ["#/rooms", "Salles et équipements", "rooms"],
    ["#/queue", "File d'attente du courrier", "queue"], ["#/directory", "Annuaire (LDAP)", "directory"],
    ["#/files", "Serveur de fichiers", "file-server"], ["#/proxy", "Proxy web", "web-proxy"],
    ["#/logs", "Journaux", "logs"], ["#/certificate", "Certificat", "certificate"],
    ["#/backups", "Sauvegardes", "backups"], ["#/system", "Système", "system"], ["#/me", "Patron", "my-account"],
    ["#/nowhere", "Page introuvable", "not-found"],
  ]) {
    if (title) await visit(hash, title, name);
    else {
      await page.goto(`${base}/admin/${hash}`);
      await page.waitForSelector("h2:text-is('Santé')");
      await page.waitForFunction(() => !document.body.innerText.includes("Vérification…"), null, { timeout: 30000 });
      await check(name);
    }
  }

  // The switch in the header: English, kept across pages, then French again.
  await page.selectOption("#lang", "en");
  await heading("Not found");
  await page.goto(`${base}/admin/#/users`);
  await heading("Users");
  expect(await page.evaluate(() => document.documentElement.lang) === "en", "the page says it is English");
  await page.selectOption("#lang", "fr");
  await heading("Utilisateurs");
  await check("users-again");

  // Signed out, the sign-in page is French too, and a wrong password is told in French.
  await page.click("text=Se déconnecter");
  await heading("Se connecter");
  await fill("login", { login: "patron", password: "pas le bon" });
  await page.waitForFunction(() => document.querySelector("#f-login-password-error")?.textContent);
  expect((await page.locator("#f-login-password-error").innerText()).includes("mot de passe erroné"),
    "a wrong password told in French");
  await check("login");
} catch (e) {
  problems.push(String(e.stack || e));
  await page.screenshot({ path: `${shots}/FAILED-fr.png`, fullPage: true }).catch(() => {});
}
await browser.close();
console.log(`pages: ${[...seen].join(" ")}`);
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
