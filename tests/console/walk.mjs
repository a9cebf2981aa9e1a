// Walks Bureau's console in Debian's headless Chromium: the first-boot wizard, a domain, a
// user, a group, a password reset, bad input beside its field, and a user's own page.
// Usage: node walk.mjs BASE_URL SETUP_TOKEN SCREENSHOT_DIR. Exits non-zero on the first
// failed expectation; test_console.py checks the results with real clients afterwards.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";

// axe-core, run in each page the walk photographs: every violation is a problem.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const [base, token, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 800 } });
const page = await context.newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
// Refused requests are logged by the browser as errors; the walk makes some on purpose.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
});
page.on("response", (r) => { if (r.status() === 404) problems.push(`404: ${r.url()}`); });

let n = 0;
const audited = new Set();
const shot = async (name) => {
  n += 1;
  await page.screenshot({ path: `${shots}/${String(n).padStart(2, "0")}-${name}.png`, fullPage: true });
  if (name.startsWith("FAILED")) return;
  // Evaluated over the DevTools protocol, so the console's CSP does not stop it.
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] }))
    .violations.map((v) => `${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((x) => x.target.join(" ")).join("; ")})`));
  audited.add(name);
  for (const v of found) problems.push(`axe on ${name}: ${v}`);
};
const expect = async (cond, what) => {
  if (!(await cond)) {
    await shot(`FAILED-${what.replace(/\W+/g, "-").slice(0, 60)}`);
    throw new Error(`expected: ${what}`);
  }
};
const text = (sel) => page.locator(sel).innerText();
const fieldError = (form, name) => text(`form[data-form=${form}] #f-${form}-${name}-error`);
const fill = async (form, values) => {
  for (const [k, v] of Object.entries(values)) {
    const input = page.locator(`form[data-form=${form}] [name=${k}]`);
    if (typeof v === "boolean") await input.setChecked(v);
    else await input.fill(v);
  }
  await page.locator(`form[data-form=${form}] button[type=submit]`).click();
};
/** An authenticator app's code (RFC 6238, SHA-1, six digits) for a base32 secret at time t. */
const totp = (secret, t = Date.now() / 1000) => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bits = [...secret].map((c) => alphabet.indexOf(c).toString(2).padStart(5, "0")).join("");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const at = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1e6).padStart(6, "0");
};
const heading = async (t) => page.waitForSelector(`h1:text-is("${t}")`, { timeout: 10000 });

try {
  // The wizard: a wrong token is told beside the token field; the right one makes the admin.
  await page.goto(`${base}/`);
  await page.waitForSelector("form[data-form=setup]");
  await shot("setup");
  await fill("setup", { token: "0000-0000", address: "boss@office.example", display_name: "Boss", password: "long enough pw" });
  await page.waitForFunction(() => document.querySelector("#f-setup-token-error")?.textContent);
  await expect((await fieldError("setup", "token")).length > 0, "the wrong token is told beside its field");
  await shot("setup-wrong-token");
  await fill("setup", { token, password: "short" });
  await page.waitForFunction(() => document.querySelector("#f-setup-password-error")?.textContent);
  await shot("setup-weak-password");
  // The time zone from the list (the name is fixed by the test's configuration file).
  await page.selectOption("form[data-form=setup] [name=timezone]", "Europe/Paris");
  await fill("setup", { password: "long enough pw" });
  await heading("office.example");
  await expect((await text("table")).includes("MX"), "the DNS records to publish");
  await shot("dns-records");
  await page.click("#check-dns");
  await page.waitForSelector("th:text-is('In DNS')");
  await expect((await text("table")).includes("not published"), "the published check (nothing is, here)");
  await shot("dns-check");

  await page.click("nav >> text=Dashboard");
  await heading("box.example.com");
  await expect((await text("main")).includes("Services"), "the services on the dashboard");
  // Issue 22: the health view first; the box's own certificate needs a look.
  await page.waitForSelector("tr[data-check=certificate]");
  await expect((await text("tr[data-check=certificate]")).includes("Needs a look"), "the self-signed certificate in the health view");
  await shot("dashboard");
  // Issue 22, defect 6: the dashboard opens at its top (a form field at its bottom took the
  // focus and scrolled it 551 px); the window's title names the page; the active page is
  // marked for screen readers; the first Tab reaches a link past the navigation.
  await expect(await page.evaluate(() => window.scrollY === 0), "the dashboard opens at its top");
  await expect((await page.title()) === "box.example.com · Bureau", `the page's title (${await page.title()})`);
  await expect((await page.getAttribute("nav a[aria-current=page]", "href")) === "#/", "the active page marked");
  await page.reload();
  await heading("box.example.com");
  await page.keyboard.press("Tab");
  await expect(await page.evaluate(() => document.activeElement?.classList.contains("skip")), "a skip link first");
  await page.keyboard.press("Enter");
  await expect(await page.evaluate(() => document.activeElement?.id === "main" && location.hash === "#/"),
    "the skip link moves to the page, which stays");

  // A domain; an invalid one is told beside the field and not added.
  await page.click("nav >> text=Domains");
  await heading("Domains");
  await fill("domain", { name: "not a domain" });
  await page.waitForFunction(() => document.querySelector("#f-domain-name-error")?.textContent);
  await fill("domain", { name: "second.example" });
  await page.waitForSelector("a:text-is('second.example')");
  await expect(!(await text("table")).includes("not a domain"), "the invalid domain not added");
  await shot("domains");
  // Issue 22, defect 5: no literal "null" where a part is left out (a domain's page
  // without the welcome text; a user without aliases, below).
  await page.click("a:text-is('second.example')");
  await heading("second.example");
  await expect(!(await text("main")).includes("null"), "no \"null\" on a domain's page");
  // Its SyncML rules: MD5 sign-in only (test_console checks them with the CLI).
  await page.selectOption("form[data-form=syncml] [name=auth]", "md5");
  await fill("syncml", { enabled: true });
  await page.waitForSelector("form[data-form=syncml] [role=status]:text-is('Saved.')");
  await shot("domain-syncml");

  // A user; a duplicate and a weak password are told beside their fields.
  await page.click("nav >> text=Users");
  await heading("Users");
  await fill("user", { address: "carol@office.example", display_name: "Carol Martin", password: "first secret pw" });
  await heading("Carol Martin");
  await expect(!(await text("main")).includes("null"), "no \"null\" on a user page without aliases");
  await shot("user-created");
  await page.click("nav >> text=Users");
  await heading("Users");
  await fill("user", { address: "carol@office.example", display_name: "Carol again", password: "first secret pw" });
  await page.waitForFunction(() => document.querySelector("#f-user-address-error")?.textContent);
  await fill("user", { address: "dan@@office", password: "long enough pw" });
  // (The submit handler clears the last error before it asks the server.)
  await page.waitForFunction(() => document.querySelector("#f-user-address-error")?.textContent);
  await expect((await fieldError("user", "address")).length > 0, "an invalid address told beside its field");
  await fill("user", { address: "dan@office.example", password: "dan" });
  await page.waitForFunction(() => document.querySelector("#f-user-password-error")?.textContent);
  await expect((await fieldError("user", "password")).length > 0, "a weak password told beside its field");
  // ... and the rules were said before: the password's hint.
  await expect((await text("#f-user-password-hint")).startsWith("At least 8 characters"), "the password rules up front");
  await shot("user-bad-input");
  await expect(!(await text("table")).includes("Carol again"), "no duplicate user listed");

  // A group with a group address and Carol as member.
  await page.click("nav >> text=Groups");
  await heading("Groups");
  // Issue 22, defect 8: members are picked from the users, each shown with its user name.
  await expect((await text("form[data-form=group] fieldset")).includes("Carol Martin (carol, carol@office.example)"),
    "the users to pick from, with their user names");
  await page.check("form[data-form=group] input[name=members][value=carol]");
  await fill("group", { name: "sales", display_name: "Sales", address: "sales@office.example" });
  await heading("Sales");
  await expect(await page.isChecked("form[data-form=members] input[name=members][value=carol]")
    && !(await page.isChecked("form[data-form=members] input[name=members][value=boss]")), "Carol a member");
  await fill("group-collection", { name: "../etc" });
  await page.waitForFunction(() => document.querySelector("#f-group-collection-name-error")?.textContent);
  await fill("group-collection", { name: "Orders" });
  await page.waitForSelector("td:text-is('Orders')");
  await page.selectOption("form[data-form=group-collection] [name=kind]", "calendar");
  await fill("group-collection", { name: "Sales calendar" });
  await page.waitForSelector("td:text-is('Sales calendar')");
  await shot("group");

  // A room that Carol approves bookings of; a manager who is no user is refused beside the field.
  await page.click("nav >> text=Rooms");
  await heading("Rooms and equipment");
  await page.selectOption("form[data-form=room] [name=policy]", "manager");
  await fill("room", { address: "blue@office.example", display_name: "Blue room", capacity: "8",
    location: "2nd floor", manager: "nobody" });
  await page.waitForFunction(() => document.querySelector("#f-room-manager-error")?.textContent);
  await fill("room", { manager: "carol" });
  await page.waitForSelector("td:text-is('Blue room')");
  await shot("rooms");

  // Reset Carol's password.
  await page.click("nav >> text=Users");
  await page.click("a:text-is('Carol Martin')");
  await heading("Carol Martin");
  await fill("password", { password: "brand new secret" });
  await page.waitForSelector("text=The new password is set.");
  await shot("password-reset");

  // Carol's phone says who it is over SyncML (its DevInf); her page lists it, and its
  // session log is switched on there.
  const cred = Buffer.from("carol@office.example:brand new secret").toString("base64");
  const said = await context.request.post(`${base}/syncml`, {
    headers: { "Content-Type": "application/vnd.syncml+xml" },
    data: "<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto>"
      + "<SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>" + base + "/syncml</LocURI></Target>"
      + "<Source><LocURI>walk-phone</LocURI></Source><Cred><Meta><Format xmlns='syncml:metinf'>b64</Format>"
      + "<Type xmlns='syncml:metinf'>syncml:auth-basic</Type></Meta><Data>" + cred + "</Data></Cred></SyncHdr>"
      + "<SyncBody><Put><CmdID>1</CmdID><Meta><Type xmlns='syncml:metinf'>application/vnd.syncml-devinf+xml</Type></Meta>"
      + "<Item><Source><LocURI>./devinf12</LocURI></Source><Data><DevInf xmlns='syncml:devinf'><VerDTD>1.2</VerDTD>"
      + "<Man>Nokia</Man><Mod>6300</Mod><DevID>walk-phone</DevID><DevTyp>phone</DevTyp></DevInf></Data></Item></Put>"
      + "<Final/></SyncBody></SyncML>",
  });
  await expect(said.ok() && (await said.text()).includes("<Data>212</Data>"), "the phone signed in over SyncML");
  await page.reload();
  await heading("Carol Martin");
  await page.click("#devices >> text=Session log");
  await heading("Session log of walk-phone");
  await expect((await text("#entries")).includes("Nothing recorded yet"), "an empty log says so");
  await fill("devlog", { on: true });
  await page.waitForSelector("form[data-form=devlog] [role=status]:has-text('Recording')");
  await shot("device-log");

  // Issue 22: the only administrator unticks their own Administrator flag. The box keeps
  // its administrator, and the page says why instead of "Saved.".
  await page.click("nav >> text=Users");
  await page.click("a:text-is('Boss')");
  await heading("Boss");
  await fill("details", { admin: false });
  await page.waitForFunction(() => document.querySelector("form[data-form=details] [role=alert]")?.textContent);
  await expect((await text("form[data-form=details] [role=alert]")).includes("last administrator"), "the last administrator's demotion refused");
  await expect(!(await text("main")).includes("Saved."), "no \"Saved.\" for a refused change");
  await shot("last-admin-refused");

  await page.click("nav >> text=Mail queue");
  await heading("Mail queue");
  await shot("queue");

  // The System page: without the box's helper (not the appliance) the slots are unknown, said
  // in words (issue 22, defect 5: it showed the helper's socket path).
  await page.click("nav >> text=System");
  await heading("System");
  await expect((await text("main")).includes("the box's system helper is not running")
    && !(await text("main")).includes(".sock"), "the helper's absence in words");
  await shot("system");

  // Issue 22: a session that ended while a form was being filled says so, and after signing
  // in again the same page comes back with what was typed.
  await page.click("nav >> text=Users");
  await heading("Users");
  await page.fill("form[data-form=user] [name=address]", "dave@office.example");
  await page.fill("form[data-form=user] [name=display_name]", "Dave Kept");
  await page.fill("form[data-form=user] [name=password]", "dave's long secret");
  await context.clearCookies();
  await page.click("form[data-form=user] button[type=submit]");
  await heading("Sign in");
  await expect((await text("main")).includes("Your session has ended"), "the ended session said");
  await shot("session-ended");
  await fill("login", { login: "boss@office.example", password: "long enough pw" });
  await heading("Users");
  await expect((await page.inputValue("form[data-form=user] [name=display_name]")) === "Dave Kept"
    && (await page.inputValue("form[data-form=user] [name=address]")) === "dave@office.example",
    "the form as it was typed, after signing in again");
  await expect((await page.inputValue("form[data-form=user] [name=password]")) === "", "no password kept");

  // A field's edge is 3:1 against its background at least (WCAG 1.4.11; it was 1.38:1), and
  // its hint and error are read with it.
  await page.click("nav >> text=Users");
  await heading("Users");
  const edge = await page.evaluate(() => {
    const rgb = (c) => c.match(/\d+/g).slice(0, 3).map(Number);
    const lum = (c) => {
      const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const input = document.querySelector("form input[type=text], form input:not([type])");
    const [a, b] = [lum(getComputedStyle(input).borderTopColor), lum(getComputedStyle(input).backgroundColor)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
  await expect(edge >= 3, `a field's border contrast (${edge.toFixed(2)}:1)`);
  const described = await page.getAttribute("form[data-form=user] [name=password]", "aria-describedby");
  await expect(described && described.split(" ").includes("f-user-password-error"), `the error tied to its field (${described})`);

  // The logs: what the walk did is there (the user added), filtered by service.
  await page.click("nav >> text=Logs");
  await heading("Logs");
  await page.waitForSelector("td:has-text('PUT /api/v1/users/carol/password')");
  await page.selectOption("form[data-form=log-filter] [name=service]", "smtp");
  await page.waitForFunction(() => location.hash.includes("service=smtp"));
  await page.waitForSelector("h1:text-is('Logs')");
  await expect(!(await text("main")).includes("/api/v1/users"), "another service's records filtered out");
  await shot("logs");

  // An application account for the directory: its password is shown once.
  await page.click("nav >> text=Directory");
  await heading("Directory (LDAP)");
  await fill("service", { name: "wiki", description: "The office wiki" });
  await page.waitForSelector("#credentials td:has-text('cn=wiki,ou=services,dc=office,dc=example')");
  await shot("directory");

  // The file server: a share name with a path is refused beside its field.
  await page.click("nav >> text=File server");
  await heading("File server");
  await fill("samba", { shares: "../etc sales" });
  await page.waitForFunction(() => document.querySelector("#f-samba-shares-error")?.textContent);
  await expect((await fieldError("samba", "shares")).includes("share name"), "the bad share name is told beside its field");
  await shot("file-server");

  // The web proxy: its log's summary, and a blocked site that is not a domain refused.
  await page.click("nav >> text=Web proxy");
  await heading("Web proxy");
  await fill("proxy", { blocked: "not a domain/../x" });
  await page.waitForFunction(() => document.querySelector("#f-proxy-blocked-error")?.textContent);
  await shot("web-proxy");
  // Issue 22, defect 3: the page says what really came of it (it said "Applied: Squid has the
  // new settings."). Without the box's helper, which alone writes Squid's configuration,
  // nothing is applied, and the page says why beside the button.
  await fill("proxy", { blocked: "" });
  await page.waitForFunction(() => document.querySelector("form[data-form=proxy] [role=alert]")?.textContent);
  const proxied = await text("form[data-form=proxy] [role=alert]");
  await expect(proxied.includes("system helper") && proxied.includes("not running"), `the proxy's real outcome (${proxied})`);
  await expect(!(await text("main")).includes("Applied"), "no \"Applied\" for a proxy not applied");
  await shot("web-proxy-not-applied");

  await page.click("nav >> text=Certificate");
  await heading("Certificate");
  await expect((await text("main")).includes("self-signed"), "the self-signed certificate described");
  await fill("certificate", { cert_pem: "not a certificate", key_pem: "nor a key" });
  await page.waitForFunction(() => document.querySelector("#f-certificate-cert_pem-error")?.textContent);
  await shot("certificate");
  // Let's Encrypt: an address the authority cannot write to is told beside its field.
  await fill("acme", { enabled: true, email: "not an address", directory: "" });
  await page.waitForFunction(() => document.querySelector("#f-acme-email-error")?.textContent);
  await shot("certificate-acme-refused");

  // A backup downloads from its page, as a gzip archive.
  await page.click("nav >> text=Backups");
  await heading("Backups");
  // The daily backup: a folder that is not one is told beside its field.
  await fill("schedule", { enabled: true, folder: "not/absolute" });
  await page.waitForFunction(() => document.querySelector("#f-schedule-folder-error")?.textContent);
  await shot("backup-schedule-refused");
  // The office's share: a server name the kernel's client would misread is told beside it,
  // and the password typed is never shown back.
  const [sent] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith("/api/v1/backup/schedule") && r.method() === "PUT"),
    fill("schedule", { enabled: true, folder: "smb", share_server: "nas,ip=192.0.2.1", share_share: "Backups",
      share_user: "office", share_password: " share secret " })]);
  // A password is sent as typed, its edge spaces too (other fields are trimmed).
  if (JSON.parse(sent.postData()).share.password !== " share secret ") throw new Error("the password was trimmed");
  await page.waitForFunction(() => document.querySelector("#f-schedule-share_server-error")?.textContent);
  if (await page.locator("#f-schedule-folder-error").textContent()) throw new Error("the share's error went to the folder");
  await shot("backup-schedule-share-refused");
  await fill("schedule", { enabled: false, folder: "" });
  await page.waitForFunction(() => document.querySelector("form[data-form=schedule] p.ok")?.textContent);
  await shot("backups");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-backup")]);
  const saved = `${shots}/backup.tar.gz`;
  await download.saveAs(saved);
  const { readFileSync } = await import("node:fs");
  const head = readFileSync(saved).subarray(0, 2);
  await expect(head[0] === 0x1f && head[1] === 0x8b, "the backup is a gzip archive");
  // Restoring something that is not a backup is refused, and the box goes on as it was.
  page.once("dialog", (d) => d.accept());
  await page.setInputFiles("#restore-file", { name: "broken.tar.gz", mimeType: "application/gzip", buffer: Buffer.from("not an archive") });
  await page.click("form[data-form=restore] button[type=submit]");
  await page.waitForFunction(() => document.querySelector("form[data-form=restore] [role=status]")?.classList.contains("error"));
  await shot("restore-refused");

  // Signed out, Carol signs in and sees her own page only.
  await page.click("#who >> text=Sign out");
  await page.waitForSelector("form[data-form=login]");
  await fill("login", { login: "carol@office.example", password: "first secret pw" });
  await page.waitForFunction(() => [...document.querySelectorAll("form[data-form=login] .error, form[data-form=login] .field-error")].some((e) => e.textContent));
  await shot("login-refused");
  await fill("login", { password: "brand new secret" });
  await heading("Carol Martin");
  await expect(!(await text("nav")).includes("Users"), "no admin pages for a user");
  // Issue 22, defect 4: the box's name and the ports it really uses (this daemon's are
  // offset), not the browser's host and the standard ones; the profile comes with the
  // console session.
  const offset = Number(new URL(base).port) - 443;
  const servers = await text("#servers");
  await expect(servers.includes("box.example.com") && !servers.includes("127.0.0.1"), "the box's name in the client setup");
  await expect(servers.includes(String(993 + offset)) && servers.includes(String(465 + offset)), "the real ports in the client setup");
  await expect(servers.includes(`https://box.example.com:${443 + offset}/admin/#/me`), "the QR code's address is the box's");
  const profile = await page.evaluate(async () => {
    const r = await fetch(document.querySelector("#profile").href);
    return [r.status, r.headers.get("content-type"), (await r.text()).includes("box.example.com")];
  });
  await expect(profile[0] === 200 && profile[2], `the profile downloads with the session (${profile})`);
  await page.waitForFunction(() => document.querySelector("#setup-qr")?.naturalWidth > 0);
  await shot("my-account");

  // Issue 22: Carol turns two-factor sign-in on with her app, makes an application
  // password for her phone, and signs in again with a code.
  await page.click("#totp-start");
  const secret = await text("#totp-secret");
  const now = Date.now() / 1000;
  await fill("totp-confirm", { code: totp(secret, now) });
  await page.waitForSelector("#two-factor .up");
  await fill("app-password-new", { name: "Phone" });
  await page.waitForSelector("#app-password code");
  const appPassword = await text("#app-password code");
  await expect(appPassword.length === 19, "the application password shown once");
  // For the IMAP and CalDAV clients the test runs after the walk.
  console.log(`app-password: ${appPassword}`);
  await expect((await text("#app-passwords table")).includes("Phone"), "the application password listed");
  await shot("two-factor");
  await page.click("#who >> text=Sign out");
  await page.waitForSelector("form[data-form=login]");
  await fill("login", { login: "carol@office.example", password: "brand new secret" });
  await page.waitForSelector("form[data-form=login] [name=code]");
  await fill("login", { code: "000000" === totp(secret, now + 30) ? "111111" : "000000" });
  await page.waitForFunction(() => document.querySelector("form[data-form=login] .field-error")?.textContent.includes("Wrong code"));
  await shot("login-code");
  await fill("login", { code: totp(secret, now + 30) });
  await heading("Carol Martin");

  // Phone-sized: the same page still fits.
  await page.setViewportSize({ width: 375, height: 740 });
  await shot("my-account-phone");
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await expect(wide <= 380, `no horizontal scrolling on a phone (${wide}px)`);
  await expect(audited.size >= 20, `axe-core ran on every page photographed (${audited.size})`);
  await expect(problems.length === 0, `no script errors: ${problems.join("; ")}`);
  console.log("console walk: ok");
} catch (e) {
  // What the page showed when a step timed out or threw.
  await shot("FAILED-here").catch(() => {});
  throw e;
} finally {
  await browser.close();
}
