// First paint of the console's sign-in page in Debian's headless Chromium, over HTTPS on
// loopback, fresh browser context each time (no cache). Usage: node console.mjs BASE_URL RUNS
import { createRequire } from "node:module";
const require = createRequire(new URL("../tests/console/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [base, runs = "10"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const paints = [];
for (let i = 0; i < Number(runs); i++) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(`${base}/admin/#/login`);
  await page.waitForSelector("form");
  paints.push(await page.evaluate(() =>
    performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN));
  await context.close();
}
await browser.close();
paints.sort((a, b) => a - b);
const p = (q) => paints[Math.min(paints.length - 1, Math.floor(q * paints.length))].toFixed(0);
console.log(`first contentful paint over ${paints.length} cold loads: p50 ${p(0.5)} ms, max ${p(1)} ms`);
