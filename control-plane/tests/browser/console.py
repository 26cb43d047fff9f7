"""The web console in a real browser: Debian's Chromium driven by Playwright.

Usage: console.py BASE_URL ADMIN_TOKEN JOB_ID SCREENSHOT_DIR

Logs in (a wrong token first), finds the job in the executions list, opens
it, cancels it, visits the runners page, checks each page at 375 px wide
(no sideways scrolling) and that it works from the keyboard, and saves a
screenshot of each page. Prints one line per check; exits non-zero on the
first that fails.
"""
import os
import sys

from playwright.sync_api import expect, sync_playwright

base, token, job, shots = sys.argv[1:5]
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

    page.get_by_role("link", name="Runners").click()
    expect(page.get_by_role("heading", name="Runners")).to_be_visible()
    fits(page, "runners")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(base + "console/login")
    page.goto(base + "console/")
    expect(page).to_have_url(base + "console/login")
    print("ok logged out")
    assert not errors, errors
    print("ok no console errors (the Content-Security-Policy blocked nothing of ours)")
    browser.close()
