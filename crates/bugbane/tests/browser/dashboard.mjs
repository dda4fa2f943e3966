// Drives Bugbane's dashboard in headless Chromium the way a person triages an error:
// sign in, find an issue by search, read its stack trace and breadcrumbs, resolve it, see
// it come back as a regression when the SDK sends it again, merge and unmerge issues.
// Screenshots of the main pages go to $SCREENSHOTS.
//
// Environment: BUGBANE_URL, BUGBANE_EMAIL, BUGBANE_PASSWORD, BUGBANE_PROJECT (org/slug),
// SEND_AGAIN (a JSON array: the command that sends the ZeroDivisionError again) and
// SEND_AGAIN_CWD (where to run it),
// SCREENSHOTS, CHROMIUM (default /usr/bin/chromium).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const base = process.env.BUGBANE_URL;
const project = process.env.BUGBANE_PROJECT;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });
const listUrl = `${base}/projects/${project}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const problems = [];
const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
const page = await context.newPage();
// A script error or a blocked resource (CSP) on any page fails the run.
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  if (m.type() === "error") problems.push(`console error: ${m.text()}`);
});

const step = (s) => console.log(`- ${s}`);
const shot = (name, p = page) => p.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

async function drained() {
  for (let i = 0; i < 600; i++) {
    const health = await (await fetch(`${base}/_health/`)).json();
    if (health.backlog === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server did not finish processing");
}

async function rows() {
  return page.locator("table.issues tbody tr").allInnerTexts();
}

async function search(query) {
  await page.goto(listUrl);
  await page.fill("input[name=query]", query);
  await Promise.all([page.waitForURL(/query=/), page.press("input[name=query]", "Enter")]);
}

try {
  step("anonymous visitors are sent to the sign-in page");
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login/);
  await shot("login");

  step("sign in");
  await page.fill("input[name=email]", process.env.BUGBANE_EMAIL);
  await page.fill("input[name=password]", process.env.BUGBANE_PASSWORD);
  await Promise.all([page.waitForURL(`${base}/`), page.click("button[type=submit]")]);
  assert.ok(await page.locator(`a[href="/projects/${project}/"]`).count(), "the project is listed");
  await shot("projects");

  step("the issue list shows what the SDK sent");
  await page.click(`a[href="/projects/${project}/"]`);
  await page.waitForURL(listUrl);
  const all = await rows();
  assert.ok(all.some((r) => r.includes("ZeroDivisionError")), `list: ${all}`);
  assert.ok(all.some((r) => r.includes("Disk usage above 90%")), `list: ${all}`);
  await shot("issues");

  step("find the crash by search and open it");
  await search("ZeroDivisionError");
  const found = await rows();
  assert.equal(found.length, 1, `search results: ${found}`);
  await Promise.all([page.waitForURL(/\/issues\/\d+\//), page.click("table.issues a.title")]);
  const issueUrl = page.url().split("?")[0];
  assert.match(await page.locator("h1.issue-title").innerText(), /ZeroDivisionError/);

  step("read the stack trace: the crashing in-app frame first, with its source line");
  const firstFrame = page.locator(".exception .frame").first();
  assert.match(await firstFrame.locator("summary").innerText(), /_level3/);
  assert.ok(await firstFrame.evaluate((e) => e.classList.contains("in-app")));
  assert.match(await firstFrame.locator("pre.context .current").innerText(), /ratio = 10 \/ n/);
  const frames = await page.locator(".exception .frame summary").allInnerTexts();
  assert.ok(frames.some((f) => f.includes("_level2")) && frames.some((f) => f.includes("_level1")), `${frames}`);
  await shot("issue");

  step("read the breadcrumbs of the logging error");
  await search("KeyError");
  await Promise.all([page.waitForURL(/\/issues\/\d+\//), page.click("table.issues a.title")]);
  const crumbs = await page.locator("table.breadcrumbs tbody").innerText();
  assert.match(crumbs, /worker started pid=1234/);
  assert.match(crumbs, /processing job job-42/);
  await shot("event-breadcrumbs");

  step("resolve the crash; it leaves the unresolved list");
  await page.goto(issueUrl);
  await Promise.all([page.waitForNavigation(), page.click("button[value=resolve]")]);
  assert.match(await page.locator(".issue-head .status").innerText(), /resolved/);
  await page.goto(listUrl);
  assert.ok(!(await rows()).some((r) => r.includes("ZeroDivisionError")), "resolved issue still listed");

  step("the SDK sends the crash again: it comes back as a regression");
  const [cmd, ...args] = JSON.parse(process.env.SEND_AGAIN);
  try {
    execFileSync(cmd, args, { stdio: "ignore", cwd: process.env.SEND_AGAIN_CWD });
  } catch {
    // The uncaught-exception case exits with status 1 by design, after sending.
  }
  await drained();
  await page.goto(listUrl);
  const back = (await rows()).find((r) => r.includes("ZeroDivisionError"));
  assert.ok(back, "the regression is listed");
  assert.match(back, /regressed/);
  await page.goto(issueUrl);
  assert.match(await page.locator(".activity").innerText(), /marked a regression/);
  assert.match(await page.locator("[data-count=events]").innerText(), /^2$/);

  step("merge two issues, then unmerge them");
  await page.goto(`${listUrl}?query=`);
  const before = (await rows()).length;
  for (const needle of ["ZeroDivisionError", "Disk usage above 90%"]) {
    await page.locator("table.issues tbody tr", { hasText: needle }).locator("input[name=id]").check();
  }
  await Promise.all([page.waitForURL(/\/issues\/\d+\//), page.click("button[value=merge]")]);
  assert.match(await page.locator(".activity").innerText(), /merged 1 issue\(s\) into this one/);
  await page.goto(`${listUrl}?query=`);
  assert.equal((await rows()).length, before - 1, "one issue fewer after merging");
  await page.locator("table.issues tbody tr", { hasText: "ZeroDivisionError" }).locator("a.title").click();
  await page.waitForURL(/\/issues\/\d+\//);
  await page.locator("#grouping").scrollIntoViewIfNeeded();
  await shot("why-grouped");
  const unmerge = page.locator("#grouping button", { hasText: "Unmerge" }).first();
  await Promise.all([page.waitForNavigation(), unmerge.click()]);
  await page.goto(`${listUrl}?query=`);
  assert.equal((await rows()).length, before, "unmerging restores the issue");

  step("from an error to its trace waterfall, and back");
  await search("order processed");
  await Promise.all([page.waitForURL(/\/issues\/\d+\//), page.click("table.issues a.title")]);
  const errorUrl = page.url();
  await Promise.all([page.waitForURL(/\/traces\/[0-9a-f]{32}\//), page.click("a[data-trace-link]")]);
  const spans = await page.locator(".waterfall .span").allInnerTexts();
  assert.ok(spans[0].includes("process-order"), `root span first: ${spans}`);
  assert.ok(spans.some((s) => s.includes("SELECT * FROM orders")), `${spans}`);
  assert.ok(spans.some((s) => s.includes("parse inventory json")), `${spans}`);
  await shot("trace");
  await Promise.all([page.waitForURL(/\/issues\/\d+\//), page.click(".trace-errors a")]);
  assert.equal(page.url().split("?")[0], errorUrl.split("?")[0], "the trace links back to the error");

  step("the performance page lists the transaction");
  await page.goto(`${listUrl}performance/`);
  assert.match(await page.locator("table.transactions").innerText(), /process-order/);
  await shot("performance");

  step("keyboard: j moves through the list, Enter opens");
  await page.goto(listUrl);
  await page.keyboard.press("j");
  await Promise.all([page.waitForURL(/\/issues\/\d+\//), page.keyboard.press("Enter")]);

  step("dark theme and a phone-sized screen");
  await page.click("[data-theme-toggle]");
  await shot("issue-dark");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  await small.goto(listUrl);
  await shot("issues-phone", small);
  await phone.close();

  assert.deepEqual(problems, [], "no script errors or blocked resources");
  console.log("dashboard browser test passed");
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
