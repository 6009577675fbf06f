"""End to end in headless Chromium: the page, served by uvicorn, over a real library (offline model).

The server runs with an API token, so every test also walks through the token prompt and loads its
thumbnails through signed image URLs. Screenshots of each step go to test-output/screenshots/.
Needs Debian's `chromium` (/usr/bin/chromium), driven by Playwright for Python (no browser download).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import TOKEN, build_photo_tree, serve_in_thread, server_config

from assetrag import Library
from assetrag.server import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-output" / "screenshots"
UPLOAD_SAMPLE = REPO / "samples" / "library" / "watches" / "blue-wristwatch.png"
TIMEOUT_MS = 15_000

#: set by .ci/run: a missing Chromium is then a failure, not a silent skip
REQUIRE_BROWSER_ENV = "ASSETRAG_REQUIRE_BROWSER"
NO_CHROMIUM = "headless Chromium is not installed at /usr/bin/chromium (Debian: apt-get install chromium)"

pytestmark = pytest.mark.browser


def chromium_missing(required: bool) -> None:
    """Skip (locally) or fail (CI, `ASSETRAG_REQUIRE_BROWSER=1`) when Chromium is not there."""
    if CHROMIUM.exists():
        return
    if required:
        pytest.fail(f"{NO_CHROMIUM}; {REQUIRE_BROWSER_ENV}=1 makes that a failure")
    pytest.skip(NO_CHROMIUM)


@pytest.fixture(scope="module", autouse=True)
def _chromium_present() -> None:
    chromium_missing(os.environ.get(REQUIRE_BROWSER_ENV) == "1")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, photo_arrays, offline_embedder) -> Iterator[str]:
    """The app (with an API token) served by uvicorn on an ephemeral 127.0.0.1 port, in a thread."""
    base = tmp_path_factory.mktemp("browser")
    build_photo_tree(base / "roots" / "library", photo_arrays)
    lib = Library(base / "lib.db", library="assets", embedder=offline_embedder)
    lib.ingest(base / "roots" / "library")
    app = create_app(lib, server_config(base, api_token=TOKEN))
    with serve_in_thread(app) as url:
        yield url
    lib.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


DUP_SERVER_UPLOAD_LIMIT = 256 * 1024  # a small limit, for the page's size check


@pytest.fixture(scope="module")
def dup_server(tmp_path_factory, photo_arrays, offline_embedder) -> Iterator[str]:
    """Like `live_server`, over a library that also holds a resized, re-encoded copy of the cat photo."""
    from PIL import Image

    base = tmp_path_factory.mktemp("browser-dups")
    root = build_photo_tree(base / "roots" / "library", photo_arrays)
    cat = Image.open(root / "animals" / "cats" / "cat.jpg")
    cat.resize((200, 133)).save(root / "things" / "cat-small.jpg", quality=70)
    lib = Library(base / "lib.db", library="assets", embedder=offline_embedder)
    lib.ingest(root)
    app = create_app(lib, server_config(base, api_token=TOKEN, max_upload_bytes=DUP_SERVER_UPLOAD_LIMIT))
    with serve_in_thread(app) as url:
        yield url
    lib.close()


@contextlib.contextmanager
def new_tab(browser, url: str) -> Iterator:
    """A fresh tab (empty sessionStorage) on the app at `url`; JS errors fail the test (the 401s that make the
    page ask for the token are expected: Chromium logs each as a console error)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=url)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 401" not in m.text else None)
    yield pg
    context.close()
    assert errors == [], errors


@pytest.fixture
def page(browser, live_server):
    with new_tab(browser, live_server) as pg:
        yield pg


@pytest.fixture
def dup_page(browser, dup_server):
    with new_tab(browser, dup_server) as pg:
        yield pg


def shot(pg, name: str, *, full: bool = False) -> None:
    pg.mouse.move(1, 1)  # no hover effect in the picture
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def open_app(pg) -> None:
    """Load the page and give the token once (the server asks for it)."""
    pg.goto("/")
    pg.wait_for_selector("#token-dialog[open]")
    pg.fill("#token-input", TOKEN)
    pg.click("#token-save")
    pg.wait_for_selector("#results .asset")
    pg.wait_for_function("() => /\\d+ assets/.test(document.querySelector('#lib-status').textContent)")


def search(pg, text: str) -> None:
    pg.fill("#q", text)
    pg.press("#q", "Enter")
    pg.wait_for_function("t => document.querySelector('#result-info').textContent.includes(t)", arg=f"“{text}”")


def first_card(pg):
    card = pg.locator("#results .asset").first
    card.locator("img").evaluate("img => img.decode()")  # the thumbnail really loaded
    return card


def score_of(card) -> float:
    return badge_score(card.locator(".score").inner_text())


def badge_score(text: str) -> float:
    """The number on a score badge ("sim 0.449": the cosine similarity, labelled)."""
    match = re.fullmatch(r"sim (\d\.\d{3})", text.strip())
    assert match, text
    return float(match.group(1))


def all_images_loaded(pg, selector: str) -> bool:
    return pg.eval_on_selector_all(selector, "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")


def test_search_shows_the_expected_thumbnail_first(page):
    open_app(page)
    shot(page, "01-library")
    search(page, "a cup of coffee")
    card = first_card(page)
    assert card.get_attribute("data-filename") == "coffee.jpg"
    assert 0.0 < score_of(card) <= 1.0 and page.locator("#results .asset .score").count() == 5
    assert all_images_loaded(page, "#results .asset img")
    srcs = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.src)")
    assert all(TOKEN not in s for s in srcs) and any("sig=" in s for s in srcs)  # signed, token-free URLs
    shot(page, "02-search-text")


def test_search_says_what_it_understood_and_can_search_the_words_as_given(page):
    open_app(page)
    search(page, "a cup of coffee from the things collection")
    page.wait_for_selector("#understood:not([hidden])")
    line = page.inner_text("#understood")
    assert "collection = things (from “things collection”)" in line and "searching for “a cup of coffee”" in line
    assert first_card(page).get_attribute("data-filename") == "coffee.jpg"
    names = page.locator("#results .asset").evaluate_all("cards => cards.map(c => c.dataset.filename)")
    assert set(names) == {"coffee.jpg", "rocket.jpg"}  # the things collection only
    shot(page, "02b-search-understood")

    with page.expect_response(lambda r: "/api/search?" in r.url and "understand=false" in r.url) as sent:
        page.click("#understood-off")  # the same words, searched as given: no filter
    assert sent.value.ok
    page.wait_for_selector("#understood", state="hidden")
    page.wait_for_function("() => document.querySelectorAll('#results .asset').length >= 5")
    assert not page.is_checked("#f-understand")
    with page.expect_response(lambda r: "/api/search?" in r.url and "mode=vector" in r.url) as sent:
        page.select_option("#f-mode", "vector")  # the mode is a control too
    assert sent.value.ok and sent.value.json()["mode"] == "vector"


def test_upload_an_image_and_find_it(page):
    open_app(page)
    page.click("#tab-btn-ingest")
    page.set_input_files("#upload-input", str(UPLOAD_SAMPLE))
    page.fill("#upload-collection", "campaign")
    page.fill("#upload-tags", "summer, hero")
    page.click("#upload-btn")
    page.wait_for_selector('.job[data-status="done"]')
    assert "1 added" in page.locator(".job").first.inner_text()
    shot(page, "03-ingest-upload")

    page.click("#tab-btn-search")
    page.set_input_files("#search-file", str(UPLOAD_SAMPLE))  # search by the same image
    page.wait_for_function("() => document.querySelector('#result-info').textContent.includes('blue-wristwatch.png')")
    card = first_card(page)
    assert card.get_attribute("data-filename") == "blue-wristwatch.png"
    assert score_of(card) > 0.99
    shot(page, "04-search-image")

    page.select_option("#f-collection", "campaign")  # and it is filed where it was put
    page.wait_for_function("() => document.querySelectorAll('#results .asset').length === 1")
    assert page.locator("#results .asset").first.get_attribute("data-filename") == "blue-wristwatch.png"


def test_open_a_result_and_find_similar(page):
    open_app(page)
    search(page, "a rocket")
    card = first_card(page)
    assert card.get_attribute("data-filename") == "rocket.jpg"
    card.click()
    page.wait_for_selector("#detail:not([hidden])")
    assert page.inner_text("#detail-title") == "rocket.jpg"
    assert {"things", "space"} <= set(page.locator("#detail-tags .chip").all_inner_texts())
    page.locator("#detail-img").evaluate("img => img.decode()")
    assert "things" in page.inner_text("#detail-meta")
    shot(page, "05-detail")

    page.click("#similar-btn")
    page.wait_for_function(
        "() => document.querySelector('#result-info').textContent.startsWith('Similar to rocket.jpg')"
    )
    page.wait_for_function("() => document.querySelectorAll('#results .asset').length >= 3")
    names = page.locator("#results .asset").evaluate_all("cards => cards.map(c => c.dataset.filename)")
    assert "rocket.jpg" not in names and len(names) >= 3
    scores = [badge_score(s) for s in page.locator("#results .asset .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    assert page.locator("#detail").is_hidden()
    shot(page, "06-similar")


def test_generate_a_plan_with_the_board_backend(page):
    open_app(page)
    page.click("#tab-btn-generate")
    page.fill("#brief", "a cat next to a cup of coffee")
    page.select_option("#gen-backend", "board")
    page.click("#plan-btn")
    cat = page.locator('.plan-item[data-label="cat"]')
    coffee = page.locator('.plan-item[data-label="cup of coffee"]')
    cat.locator(".ref img").first.evaluate("img => img.decode()")
    assert cat.locator(".ref .ref-info").first.inner_text().startswith("cat.jpg")
    shot(page, "07-plan")

    # swap the coffee reference for another candidate, and remove every reference outside the two items
    before = coffee.locator(".ref").first.get_attribute("data-id")
    coffee.locator(".ref .swap").first.click()
    coffee.locator(".candidates .mini").first.click()
    after = coffee.locator(".ref").first.get_attribute("data-id")
    assert after != before
    for label in ("whole brief", "style"):
        group = page.locator(f'.plan-item[data-label="{label}"]')
        while group.count() and group.locator(".ref .remove").count():
            group.locator(".ref .remove").first.click()
    shot(page, "08-plan-edited")

    page.click("#generate-btn")
    page.wait_for_selector("#gen-result:not([hidden]) #gen-image")
    page.locator("#gen-image").evaluate("img => img.decode()")
    width = page.locator("#gen-image").evaluate("img => img.naturalWidth")
    assert width > 300  # the board: titled rows of reference tiles
    refs = page.locator("#gen-refs .mini").evaluate_all("tiles => tiles.map(t => t.dataset.id)")
    assert refs[1] == after and len(refs) == 2
    assert page.locator("#gen-fidelity").count() == 0  # no large "n/a" where a board has no fidelity
    assert "No fidelity for a reference board" in page.inner_text("#gen-fidelity-note")
    page.evaluate("() => window.scrollTo(0, 0)")
    shot(page, "09-board", full=True)


def test_a_missing_chromium_fails_when_the_browser_is_required(monkeypatch):
    """`.ci/run` sets ASSETRAG_REQUIRE_BROWSER=1: no Chromium is then a failure; without it, a skip."""
    monkeypatch.setattr(f"{__name__}.CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_BROWSER_ENV):
        chromium_missing(required=True)
    with pytest.raises(pytest.skip.Exception):
        chromium_missing(required=False)


def test_hybrid_score_badges_say_what_they_show_and_what_the_order_follows(page):
    open_app(page)
    search(page, "a cup of coffee")  # hybrid, the default: ordered by meaning and words together
    first_card(page)
    assert "ranked by meaning + words" in page.inner_text("#result-info")
    cards = page.locator("#results .asset")
    ranks = cards.locator(".rank").all_inner_texts()
    assert ranks == [f"#{i}" for i in range(1, len(ranks) + 1)]  # the order shown is the rank order
    for i in range(cards.count()):
        badge = cards.nth(i).locator(".score")
        badge_score(badge.inner_text())  # "sim 0.xxx": the cosine, labelled as similarity
        title = badge.get_attribute("title")
        assert title.startswith("similarity ") and f"Ranked #{i + 1} by meaning and words" in title, title
        assert "by meaning #" in title and "by words " in title, title
    shot(page, "10-hybrid-badges")

    with page.expect_response(lambda r: "/api/search?" in r.url and "mode=vector" in r.url):
        page.select_option("#f-mode", "vector")  # meaning only: the similarity is the order
    page.wait_for_function("() => !document.querySelector('#result-info').textContent.includes('ranked by')")
    scores = [badge_score(s) for s in page.locator("#results .asset .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    assert "The list is ordered by it" in page.locator("#results .asset .score").first.get_attribute("title")


def test_backends_the_server_cannot_run_are_disabled_with_the_reason(page, monkeypatch):
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "ASSETRAG_DIFFUSERS_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)  # the live server runs in this process
    open_app(page)
    page.click("#tab-btn-generate")
    page.wait_for_selector("#gen-backend-note:not([hidden])")
    assert page.input_value("#gen-backend") == "board"
    disabled = page.locator("#gen-backend option[disabled]").evaluate_all("os => os.map(o => o.value)")
    assert sorted(disabled) == ["diffusers", "gemini", "openai"]
    assert "GEMINI_API_KEY" in page.get_attribute('#gen-backend option[value="gemini"]', "title")
    note = page.inner_text("#gen-backend-note")
    assert "gemini (set GEMINI_API_KEY" in note and "OPENAI_API_KEY" in note and "on the server" in note
    shot(page, "11-backends-not-set-up")


def test_start_up_data_loads_after_a_wrong_token_then_the_right_one(page):
    page.goto("/")
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", "not-the-token")
    page.click("#token-save")
    page.wait_for_selector("#token-dialog[open] #token-error:not([hidden])")  # asked again: not accepted
    page.fill("#token-input", TOKEN)
    page.click("#token-save")
    page.wait_for_selector("#results .asset")
    page.wait_for_function("() => /\\d+ assets/.test(document.querySelector('#lib-status').textContent)")
    page.wait_for_function("() => document.querySelectorAll('#f-collection option').length > 1")
    assert page.locator("#gen-backend option").count() == 4  # every backend, not only the board fallback
    assert page.locator('#f-collection option[value="people"]').count() == 1
    assert page.locator('#gen-collection option[value="people"]').count() == 1


def test_generate_tab_fits_a_phone(page):
    page.set_viewport_size({"width": 390, "height": 844})
    open_app(page)
    page.click("#tab-btn-generate")
    page.fill("#brief", "a cat next to a cup of coffee")

    def assert_within(selectors):
        for sel in selectors:
            for box in page.locator(sel).evaluate_all("els => els.map(e => e.getBoundingClientRect().toJSON())"):
                assert box["width"] > 0 and box["left"] >= 0 and box["right"] <= 390, (sel, box)

    page.set_input_files("#gen-ref-input", str(UPLOAD_SAMPLE))  # an image of the user's own, previewed
    controls = ["#tab-btn-generate", "#brief", "#gen-backend", "#gen-collection", "#gen-style", "#gen-store"]
    controls += ["#plan-btn", "#gen-ref-add", ".given-item", ".given-item button", "#tab-btn-duplicates"]
    assert_within(controls)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # the tab bar too
    shot(page, "12-phone-generate", full=True)
    page.click("#plan-btn")
    page.wait_for_selector('.plan-item[data-label="cat"] .ref')
    assert_within([".plan-item", ".ref", ".ref-tools button", ".ref.add", "#generate-btn"])
    assert_within(['.plan-item[data-label="given"] .ref.given-ref'])  # the user's image, unbound: "Your images"
    assert "null" not in page.inner_text("#plan-items")
    page.locator('.plan-item[data-label="cat"] .ref .swap').first.click()
    page.wait_for_selector('.plan-item[data-label="cat"] .candidates .mini')
    assert_within([".candidates .mini", ".candidates-head button"])
    page.click("#generate-btn")
    page.wait_for_selector("#gen-result:not([hidden]) #gen-image")
    assert_within(["#gen-image", "#gen-fidelity-note", "#gen-refs .mini", "#gen-result .drawer-actions .btn"])
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing sideways off the screen
    shot(page, "13-phone-result", full=True)


def assert_fits(pg, selectors, width: int = 390) -> None:
    """Each element of each selector is laid out (non-zero width) and inside the `width`-px viewport."""
    for sel in selectors:
        boxes = pg.locator(sel).evaluate_all("els => els.map(e => e.getBoundingClientRect().toJSON())")
        assert boxes, sel
        for box in boxes:
            assert box["width"] > 0 and box["left"] >= 0 and box["right"] <= width, (sel, box)


def open_duplicates(pg) -> None:
    open_app(pg)
    pg.click("#tab-btn-duplicates")
    pg.wait_for_function(
        "() => /group|^$/.test(document.querySelector('#dup-info').textContent) && "
        "!document.querySelector('#dup-btn').disabled"
    )


def test_duplicates_tab_groups_a_photo_with_its_resized_copy(dup_page):
    page = dup_page
    open_duplicates(page)
    groups = page.locator("#dup-groups .dup-group")
    assert groups.count() == 1 and groups.first.get_attribute("data-kind") == "near"
    members = groups.first.locator(".dup-member")
    names = members.evaluate_all("ms => ms.map(m => m.dataset.filename)")
    assert sorted(names) == ["cat-small.jpg", "cat.jpg"]  # and none of the unrelated photos
    text = groups.first.inner_text()
    assert "Near-duplicates" in text and "perceptual hash" in text
    assert "animals/cats/cat.jpg" in text and "things/cat-small.jpg" in text  # paths, relative to the root
    assert "compared with the others" in text and re.search(r"hash: (identical|\d+ of 64 bits differ)", text), text
    page.wait_for_function("() => [...document.querySelectorAll('#dup-groups img')].every(i => i.complete)")
    assert all_images_loaded(page, "#dup-groups img")
    assert page.input_value("#dup-distance") == "10"  # the server's default, shown in the control
    assert "no embedding threshold is calibrated" in page.inner_text("#dup-notes")  # the offline model's case
    shot(page, "14-duplicates")

    # keyboard: tab to a thumbnail, Enter opens the asset in the detail drawer
    members.nth(1).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail:not([hidden])")
    assert page.inner_text("#detail-title") == names[1]
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail", state="hidden")

    # the controls reach the API; a bad value is said, not sent
    with page.expect_response(lambda r: "/api/duplicates?" in r.url and "distance=0" in r.url) as sent:
        page.fill("#dup-distance", "0")
        page.press("#dup-distance", "Enter")
    assert sent.value.ok and sent.value.json()["distance"] == 0
    page.fill("#dup-distance", "40")
    page.click("#dup-btn")
    page.wait_for_selector("#dup-error:not([hidden])")
    assert "Hash bits that may differ" in page.inner_text("#dup-error")
    page.fill("#dup-distance", "10")
    page.uncheck("#dup-embedding")
    assert page.is_disabled("#dup-threshold")
    with page.expect_response(lambda r: "/api/duplicates?" in r.url and "embedding=false" in r.url) as sent:
        page.click("#dup-btn")
    assert sent.value.ok
    page.wait_for_selector("#dup-error", state="hidden")
    assert page.locator("#dup-groups .dup-group").count() == 1


def test_duplicates_tab_says_when_there_are_none(page):
    open_duplicates(page)  # five distinct photos
    page.wait_for_selector("#dup-empty:not([hidden])")
    assert page.inner_text("#dup-empty") == "No near-duplicates found."
    assert page.locator("#dup-groups .dup-group").count() == 0


def test_duplicates_tab_fits_a_phone(dup_page):
    page = dup_page
    page.set_viewport_size({"width": 390, "height": 844})
    open_duplicates(page)
    page.wait_for_selector("#dup-groups .dup-member img")
    assert_fits(page, [".tabs button", "#dup-distance", "#dup-embedding", "#dup-threshold", "#dup-btn"])
    assert_fits(page, [".dup-group", ".dup-member", ".dup-path"])
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, "15-phone-duplicates", full=True)


def test_generate_with_an_image_of_your_own(page, tmp_path, photo_arrays):
    """An uploaded image is previewed, checked before sending, sent with the plan and the generation, and the
    item that points at it ("this character") is shown bound to it."""
    from PIL import Image

    mine = tmp_path / "player one.png"
    Image.fromarray(photo_arrays["astronaut"][::-1]).save(mine)  # not in the library
    sha = hashlib.sha256(mine.read_bytes()).hexdigest()
    other = tmp_path / "other.png"
    Image.fromarray(photo_arrays["rocket"][::-1]).save(other)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")

    open_app(page)
    page.click("#tab-btn-generate")
    page.fill("#brief", "A figurine of this character holding a cup of coffee")
    page.select_option("#gen-backend", "board")
    page.set_input_files("#gen-ref-input", [str(mine), str(other), str(notes)])
    page.wait_for_selector("#gen-ref-error:not([hidden])")
    assert "notes.txt: not an image of an accepted type" in page.inner_text("#gen-ref-error")
    items = page.locator("#gen-ref-list .given-item")
    assert items.evaluate_all("li => li.map(i => i.dataset.name)") == ["player one.png", "other.png"]
    page.click('#gen-ref-list button[aria-label="Remove other.png"]')
    assert items.evaluate_all("li => li.map(i => i.dataset.name)") == ["player one.png"]
    items.first.locator("img").evaluate("img => img.decode()")
    shot(page, "16-generate-given")

    # (Playwright does not expose a multipart body with files: the server's answer shows what it got)
    with page.expect_response(lambda r: r.url.endswith("/api/generate/plan")) as answer:
        page.click("#plan-btn")
    assert answer.value.ok and answer.value.request.headers["content-type"].startswith("multipart/form-data")
    chosen = answer.value.json()["items"][0]["chosen"]
    assert (chosen["id"], chosen["path"], chosen["role"]) == (sha, "player one.png", "given")  # these bytes
    bound = page.locator('.plan-item[data-label="figurine of this character"]')
    ref = bound.locator(".ref.given-ref")
    ref.locator("img").evaluate("img => img.decode()")
    assert ref.get_attribute("data-id") == sha and ref.get_attribute("data-given") == "player one.png"
    assert ref.locator("img").get_attribute("src").startswith("blob:")  # the local preview: not in the library
    assert "Bound to your image" in bound.inner_text() and "yours" in ref.inner_text()
    coffee = page.locator('.plan-item[data-label="cup of coffee"] .ref').first.get_attribute("data-id")
    shot(page, "17-plan-given")

    with page.expect_response(lambda r: r.url.endswith("/api/generate") and r.request.method == "POST") as answer:
        page.click("#generate-btn")
    assert answer.value.status == 202, answer.value.text()
    params = answer.value.json()["params"]
    assert params["given"] == [{"name": "player one.png", "id": sha}]
    assert params["refs"]["figurine of this character"] == [sha]  # the edited refs name it; still given
    page.wait_for_selector("#gen-result:not([hidden]) #gen-image")
    page.locator("#gen-image").evaluate("img => img.decode()")
    refs = page.locator("#gen-refs .mini").evaluate_all("tiles => tiles.map(t => t.dataset.id)")
    assert refs[:2] == [sha, coffee]
    assert "yours" in page.locator(f'#gen-refs .mini[data-id="{sha}"]').inner_text()
    assert all_images_loaded(page, "#gen-refs img")

    # changing the images after planning asks for a new plan before generating
    page.set_input_files("#gen-ref-input", str(other))
    page.wait_for_selector("#plan-stale")
    assert page.is_disabled("#generate-btn")
    page.click('#gen-ref-list button[aria-label="Remove other.png"]')
    page.wait_for_selector("#plan-stale", state="detached")
    assert page.is_enabled("#generate-btn")


def test_generate_refuses_too_large_an_image_before_sending(dup_page, tmp_path, photo_arrays):
    """The size limit is the server's (/api/generate/backends says it): a larger image is refused on the page,
    with the reason, and never sent."""
    from PIL import Image

    big = tmp_path / "big.png"
    Image.fromarray(photo_arrays["astronaut"]).save(big)  # ~400 KB of PNG
    assert big.stat().st_size > DUP_SERVER_UPLOAD_LIMIT
    small = tmp_path / "small.jpg"
    Image.fromarray(photo_arrays["astronaut"]).resize((64, 64)).save(small)
    page = dup_page
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/generate/plan" in r.url else None)
    open_app(page)
    page.click("#tab-btn-generate")
    page.set_input_files("#gen-ref-input", [str(big), str(small)])
    page.wait_for_selector("#gen-ref-error:not([hidden])")
    assert "big.png: " in page.inner_text("#gen-ref-error") and "larger than the 256 KB limit" in page.inner_text(
        "#gen-ref-error"
    )
    names = page.locator("#gen-ref-list .given-item").evaluate_all("li => li.map(i => i.dataset.name)")
    assert names == ["small.jpg"] and sent == []
