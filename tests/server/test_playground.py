"""The playground page at `/`, driven in a real browser (Debian's Chromium, headless, through Playwright; `.ci/run`
installs it): it lists the server's voices, speaks a sentence over the websocket into the Web Audio graph and shows
the figures, stops mid-utterance with nothing scheduled after the press, streams text as it is typed, plays 8 kHz
μ-law, clones a voice from an uploaded file (and shows the server's own message for a bad one), and works with an
API key. The page's test hook is `window.__playground`."""

from __future__ import annotations

import shutil

import httpx
import pytest

from qwen3tts_realtime import Qwen3TTS
from qwen3tts_realtime.server import ServerConfig

from .conftest import running_server

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-quic", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a fake mic


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def custom(golden, tmp_path_factory):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "custom_voice")
    config = ServerConfig(model="tiny-custom-voice", warmup_text="", voice_dir=str(tmp_path_factory.mktemp("v")))
    with running_server(tts, config) as running:
        yield running
    tts.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def hook(page, name: str):
    return page.evaluate(f"window.__playground.{name}")


def open_page(page, server) -> None:
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#voice option').length > 0", timeout=30_000)


def speak(page, text: str) -> None:
    page.fill("#text", text)
    page.uncheck("#sampled")  # greedy: the same audio every run
    page.click("#speak")


def test_the_page_speaks_a_sentence_and_shows_its_figures(page, custom):
    open_page(page, custom)
    assert page.eval_on_selector_all("#voice option", "os => os.map(o => o.value)") == ["ryan", "eric"]
    assert "custom_voice" in page.inner_text("#model") and page.is_disabled("#clone")
    speak(page, "Hello there, how are you?")
    page.wait_for_function("window.__playground.done === 'finished'", timeout=60_000)
    assert hook(page, "samplesScheduled") > 0 and hook(page, "samplesScheduled") % 1920 == 0  # 24 kHz frames
    assert hook(page, "firstAudioMs") > 0 and hook(page, "xrt") > 0
    assert page.inner_text("#m-first").endswith(" ms") and page.inner_text("#m-xrt").endswith("×")
    assert page.eval_on_selector_all("#words span", "s => s.map(x => x.textContent.trim())") == \
        ["Hello", "there,", "how", "are", "you?"]
    # each word is highlighted as the audio clock reaches it (all of them within the utterance's length)
    page.wait_for_function("document.querySelectorAll('#words span.spoken').length === 5", timeout=20_000)


def test_stop_drops_what_was_buffered_and_frees_the_slot(page, custom):
    open_page(page, custom)
    speak(page, "This sentence is long enough to be stopped while it is still being spoken aloud. " * 3)
    page.wait_for_function("window.__playground.samplesScheduled > 0", timeout=60_000)
    page.click("#stop")
    page.wait_for_function("window.__playground.done === 'cancelled'", timeout=30_000)
    assert hook(page, "samplesAfterStop") * 1000 / 24000 <= 100  # at most 100 ms scheduled after the press
    assert hook(page, "stopMs") is not None and page.inner_text("#m-stop").endswith(" ms")
    custom.wait_idle(5)


def test_type_ahead_streams_text_as_it_is_typed(page, custom):
    open_page(page, custom)
    page.check("#typeahead")
    page.uncheck("#sampled")
    page.fill("#text", "")
    page.type("#text", "Hi there, nice to meet you.", delay=15)  # each keystroke goes out as a text message
    page.click("#speak")  # ends the input
    page.wait_for_function("window.__playground.done === 'finished'", timeout=60_000)
    assert hook(page, "samplesScheduled") > 0 and hook(page, "utterances") == 1


def test_phone_audio_plays_at_8_khz(page, custom):
    open_page(page, custom)
    page.select_option("#format", "8000/ulaw")
    speak(page, "Hello there.")
    page.wait_for_function("window.__playground.done === 'finished'", timeout=60_000)
    assert hook(page, "samplesScheduled") % 640 == 0 and hook(page, "samplesScheduled") > 0  # 80 ms at 8 kHz


def test_clone_from_an_upload_then_speak_with_it(page, golden, tmp_path):
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "base")
    config = ServerConfig(model="tiny-base", warmup_text="", voice_dir=str(tmp_path / "voices"))
    with running_server(tts, config) as base:
        page.goto(base.url + "/")
        page.wait_for_function("document.querySelector('#model').textContent.includes('base')", timeout=30_000)
        assert page.is_disabled("#speak")  # a Base model has no voice until one is cloned
        page.fill("#clone-name", "anna")
        page.fill("#clone-text", "This is the reference voice.")
        page.set_input_files("#clone-file", str(golden / "inputs" / "ref_24k.wav"))
        page.click("#clone")
        page.wait_for_function("document.querySelector('#clone-status').textContent === 'cloned anna'",
                               timeout=60_000)
        assert page.input_value("#voice") == "anna"
        speak(page, "Hello there.")
        page.wait_for_function("window.__playground.done === 'finished'", timeout=60_000)
        assert hook(page, "samplesScheduled") > 0

        bad = tmp_path / "notes.wav"
        bad.write_bytes(b"this is not audio at all")
        with httpx.Client(base_url=base.url) as c:
            expected = c.post("/v1/voices", files={"file": ("notes.wav", bad.read_bytes(), "audio/wav")},
                              data={"name": "bad", "ref_text": "x"}).json()["error"]["message"]
        assert expected == ("the uploaded file is not audio libsndfile can read (Format not recognised); send WAV, "
                            "FLAC, OGG or MP3")  # libsndfile's words, no Python repr
        page.fill("#clone-name", "bad")
        page.fill("#clone-text", "x")
        page.set_input_files("#clone-file", str(bad))
        page.click("#clone")
        page.wait_for_function("document.querySelector('#clone-status').classList.contains('error')",
                               timeout=30_000)
        assert page.inner_text("#clone-status") == expected
    tts.close()


def test_with_an_api_key(page, golden, tmp_path, custom):
    config = ServerConfig(model="tiny-custom-voice", warmup_text="", api_key="s3cret", voice_dir=str(tmp_path))
    with running_server(custom.tts, config) as locked:
        page.goto(locked.url + "/")  # the page itself is public
        page.wait_for_function("document.querySelector('#status').classList.contains('error')", timeout=30_000)
        page.fill("#api-key", "s3cret")
        page.dispatch_event("#api-key", "change")
        page.wait_for_function("document.querySelectorAll('#voice option').length > 0", timeout=30_000)
        speak(page, "Hello there.")  # the websocket carries the key as its subprotocol
        page.wait_for_function("window.__playground.done === 'finished'", timeout=60_000)
        assert hook(page, "samplesScheduled") > 0


def test_no_ui_serves_the_api_only(golden, tmp_path, custom):
    config = ServerConfig(model="tiny-custom-voice", warmup_text="", ui=False, voice_dir=str(tmp_path))
    with running_server(custom.tts, config) as api_only:
        assert httpx.get(api_only.url + "/").status_code == 404
        assert httpx.get(api_only.url + "/health").status_code == 200
    assert httpx.get(custom.url + "/playground/playground.js").headers["content-type"].startswith("text/javascript")


def test_a_microphone_recording_is_sent_as_wav(page, golden, tmp_path):
    """Record (Chromium's fake microphone: a beep) -> a 16-bit WAV that the server reads; its answer, a clone or
    its reason for refusing a beep, is shown as it is."""
    tts = Qwen3TTS.from_pretrained(golden / "tiny" / "base")
    config = ServerConfig(model="tiny-base", warmup_text="", voice_dir=str(tmp_path / "voices"))
    with running_server(tts, config) as base:
        page.goto(base.url + "/")
        page.wait_for_function("!document.querySelector('#record').disabled", timeout=30_000)
        page.click("#record")
        page.wait_for_function("document.querySelector('#record').textContent === 'Stop recording'")
        page.wait_for_timeout(2500)  # a 2.5 s clip
        page.click("#record")
        page.wait_for_function("document.querySelector('#clone-status').textContent.startsWith('recorded')",
                               timeout=10_000)
        assert 1.5 <= float(page.inner_text("#clone-status").split()[1]) <= 5
        page.fill("#clone-name", "mic")
        page.fill("#clone-text", "A recording.")
        page.click("#clone")
        page.wait_for_function("!/^(cloning|recorded)/.test(document.querySelector('#clone-status').textContent)",
                               timeout=60_000)
        status = page.inner_text("#clone-status")
        with httpx.Client(base_url=base.url) as c:
            names = [v["name"] for v in c.get("/v1/voices").json()["voices"]]
        if status == "cloned mic":
            assert "mic" in names
        else:  # refused for what the clip is (a beep), never because the server could not read the WAV
            assert "mic" not in names and "libsndfile" not in status, status
    tts.close()
