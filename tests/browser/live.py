"""A job started from the web console, its log watched live in a real browser.

Usage: live.py BASE_URL ADMIN_TOKEN READY_FILE SCREENSHOT_DIR

Logs in, opens the job `greet`, runs it with an option from its form, and
writes the new execution's id to READY_FILE (the test then lets a runner take
it). On the execution's page, without reloading, the log must show the
option's value as text, a red line in red, the lines as they come, and the
status must become `succeeded`. Then it starts `long`, writes its id to
READY_FILE.2, and once its log says it started, cancels it from its page:
the status must become `cancelled`.
"""
import os
import sys

from playwright.sync_api import expect, sync_playwright

base, token, ready, shots = sys.argv[1:5]
os.makedirs(shots, exist_ok=True)

with sync_playwright() as p:
    # The test server's certificate is from a CA made for the test.
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_context(ignore_https_errors=True).new_page()
    page.goto(base + "console/login")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Jobs").click()
    page.get_by_role("link", name="greet").click()
    page.screenshot(path=os.path.join(shots, "job.png"), full_page=True)
    page.get_by_label("who (required)").fill("<b>ops</b>")
    page.get_by_role("button", name="Run greet").click()
    expect(page.locator("#status")).to_have_text("queued")
    execution = page.url.rstrip("/").rsplit("/", 1)[1]
    with open(ready + ".part", "w") as out:
        out.write(execution)
    os.rename(ready + ".part", ready)
    print("ok started from the job's form:", execution)
    log = page.locator("#log")
    expect(log).to_contain_text("line 1", timeout=60_000)
    print("ok the first line arrived without a reload")
    expect(log).to_contain_text("hello <b>ops</b>")
    expect(page.locator("#log b")).to_have_count(0)
    expect(page.locator("#log .fg1")).to_have_text("red")
    print("ok the option is text, the ANSI red is red")
    expect(log).to_contain_text("line 4", timeout=60_000)
    expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
    print("ok the status follows the job to succeeded")
    # The page shows the ended job's steps once it is over.
    expect(page.get_by_role("cell", name="local")).to_be_visible(timeout=30_000)
    expect(page.locator("#log")).to_contain_text("line 4")
    print("ok its steps once it ended")
    page.screenshot(path=os.path.join(shots, "execution-live.png"), full_page=True)

    # A running job, cancelled from its page.
    page.get_by_role("link", name="Jobs").click()
    page.get_by_role("link", name="long").click()
    page.get_by_role("button", name="Run long").click()
    expect(page.locator("#status")).to_have_text("queued")
    with open(ready + ".2.part", "w") as out:
        out.write(page.url.rstrip("/").rsplit("/", 1)[1])
    os.rename(ready + ".2.part", ready + ".2")
    expect(page.locator("#log")).to_contain_text("started", timeout=60_000)
    expect(page.locator("#status")).to_have_text("running")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#status")).to_have_text("cancelled", timeout=60_000)
    print("ok a running job cancelled from its page")
    browser.close()
