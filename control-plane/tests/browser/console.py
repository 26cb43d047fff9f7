"""The web console in a real browser: Debian's Chromium driven by Playwright.

Usage: console.py BASE_URL ADMIN_TOKEN JOB_ID SCREENSHOT_DIR AXE_JS

Logs in (a wrong token first), finds the job in the executions list, opens
it, cancels it, registers a runner and visits the runners page, checks each
page at 375 px wide (no sideways scrolling) and that it works from the
keyboard, and saves a screenshot of each page. Prints one line per check; exits non-zero on the
first that fails.
"""
import os
import sys

from playwright.sync_api import expect, sync_playwright

base, token, job, shots, axe = sys.argv[1:6]
os.makedirs(shots, exist_ok=True)


def fits(page, name):
    page.set_viewport_size({"width": 375, "height": 800})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{name}: {width} px wide at 375"
    page.screenshot(path=os.path.join(shots, f"{name}-375.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)
    print(f"ok {name}: fits 375 px, screenshots saved")


with sync_playwright() as p:
    # The test server's certificate is from a CA made for the test.
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(base + "console/")
    expect(page).to_have_url(base + "console/login")
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    print("ok a wrong token is refused")
    errors.clear()  # the refusal's own 401
    fits(page, "login")

    # Log in with the keyboard only.
    page.get_by_label("Admin token").focus()
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Executions")).to_be_visible()
    cookies = context.cookies()
    session = [c for c in cookies if c["name"] == "sortie_console"][0]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict", session
    assert page.evaluate("document.cookie") == "", "the session cookie is readable by scripts"
    print("ok logged in; the cookie is HttpOnly, Secure, SameSite=Strict")
    expect(page.get_by_role("link", name=job)).to_be_visible()
    fits(page, "executions")

    page.get_by_role("link", name=job).click()
    expect(page.get_by_role("heading", name=job)).to_be_visible()
    expect(page.locator("#status")).to_have_text("queued")
    fits(page, "execution")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#status")).to_have_text("failed")
    expect(page.get_by_text("cancelled before it was claimed")).to_be_visible()
    print("ok cancelled from its page")

    # A runner registered now, not seen since: healthy, then stale. It is
    # registered here, not before the browser starts, so that a slow start
    # cannot use up the 10 s in which it is healthy.
    answer = context.request.post(
        base + "admin/runners",
        headers={"authorization": f"Bearer {token}"},
        data={"name": "edge-1", "tags": ["dmz"]},
    )
    assert answer.status == 201, answer.text()
    page.get_by_role("link", name="Runners").click()
    expect(page.get_by_role("heading", name="Runners")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="edge-1")
    expect(row).to_contain_text("healthy")
    fits(page, "runners")
    # Not seen for longer than --stale-after (10s here): shown stale, in words.
    page.wait_for_timeout(10_500)
    page.reload()
    expect(page.get_by_role("row").filter(has_text="edge-1")).to_contain_text("stale")
    print("ok a runner not seen goes stale")
    page.get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    fits(page, "jobs")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(base + "console/login")
    page.goto(base + "console/")
    expect(page).to_have_url(base + "console/login")
    print("ok logged out")
    assert not errors, errors
    print("ok no console errors (the Content-Security-Policy blocked nothing of ours)")

    # axe-core on every page. Injected as an inline script, which the
    # console's own policy forbids: this context alone bypasses it.
    scan = browser.new_context(ignore_https_errors=True, bypass_csp=True).new_page()
    scan.goto(base + "console/login")
    pages = [("login", None)]
    scan.get_by_label("Admin token").fill(token)
    scan.get_by_role("button", name="Log in").click()
    pages += [("executions", "console/"), ("execution", "console/executions/" + job),
              ("jobs", "console/jobs"), ("runners", "console/runners")]
    serious = []
    for name, path in pages:
        if path:
            scan.goto(base + path)
        scan.add_script_tag(path=axe)
        result = scan.evaluate("axe.run(document, {resultTypes: ['violations']})")
        for v in result["violations"]:
            if v["impact"] in ("serious", "critical"):
                serious.append(f"{name}: {v['id']} ({v['impact']}): {v['help']}")
        print(f"ok axe on {name}: {len(result['violations'])} violation(s), none serious"
              if not any(s.startswith(name + ":") for s in serious) else f"axe on {name}")
    assert not serious, "\n".join(serious)
    browser.close()
