"""The demo's report.html in a real browser (headless Debian Chromium via Selenium): it opens
from disk with no error and no request to any host, lists every scored video, sorts and
filters, draws the timeline of the video clicked, recomputes the alarms as the Python side
does when the threshold moves, and keeps the timeline and the source video in sync.

Screenshots of the overview and of one video's view are written to this session's
temporary folder (printed with ``-s``)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from evaluate import report
from features.alarms import AlarmRule, find_alarms
from tests.browser import requests, start_chromium, stop_chromium, wait_for


@pytest.fixture(scope="module")
def browser():
    driver, profile = start_chromium()
    yield driver
    stop_chromium(driver, profile)


@pytest.fixture(scope="module")
def scores(demo):
    workdir, _ = demo
    return workdir / "scores" / "test"


@pytest.fixture(scope="module")
def truth(scores):
    """What the Python side knows: per video its p (float32), fps, times and intervals."""
    frames = pd.read_parquet(scores / "frame_scores.parquet")
    table = pd.read_csv(scores / "videos.csv", keep_default_na=False)
    rule, _ = report.alarm_rule(json.loads((scores / "metrics.json").read_text()))
    out = {}
    for row in table.itertuples():
        mine = frames[frames["video_id"] == row.video_id]
        ivs = [tuple(map(int, iv.split("-"))) for iv in row.truth_intervals.split(";") if iv]
        out[row.video_id] = {"p": mine["p_anomaly"].to_numpy(np.float32), "fps": row.fps,
                             "t": mine["time_s"].to_numpy(), "intervals": ivs,
                             "class_name": row.class_name, "pred": row.pred_class,
                             "peak": row.max_p_anomaly}
    return out, rule


@pytest.fixture(scope="session")
def screens(tmp_path_factory):
    return tmp_path_factory.mktemp("report_screens")


def _open(driver, scores):
    requests(driver)                                  # forget what came before
    driver.get((scores / "report.html").as_uri())
    assert wait_for(driver, "window.vadReport && window.vadReport.ready"), "page never ready"


def _alarms(truth, threshold):
    videos, rule = truth
    rule = AlarmRule(threshold, rule.merge_gap_s, rule.min_duration_s)
    return {vid: [(a.start_frame, a.end_frame) for a in find_alarms(v["p"], v["fps"], rule)]
            for vid, v in videos.items()}


def _set_threshold(driver, value: float) -> float:
    driver.execute_script("const s = document.getElementById('threshold'); s.value = arguments[0];"
                          "s.dispatchEvent(new Event('input'));", str(value))
    return driver.execute_script("return vadReport.state.threshold")


def _shown(driver) -> list[str]:
    return driver.execute_script("return vadReport.shownIds()")


def _select_video(driver, video_id: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#videos tbody tr[data-video="{video_id}"]').click()
    assert wait_for(driver, "vadReport.state.current === arguments[0]", 5, video_id)


def test_report_opens_offline_with_no_error_and_no_request(browser, scores, screens, truth):
    _open(browser, scores)
    browser.save_screenshot(str(screens / "overview.png"))
    _select_video(browser, "test_Arson_00")            # loads its video and thumbnails too
    assert wait_for(browser, "document.getElementById('player').readyState >= 1", 10)
    assert browser.execute_script("return vadReport.errors") == []
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    seen = requests(browser)
    page = (scores / "report.html").as_uri()
    assert any(r["url"] == page for r in seen)          # the log does record requests
    assert any(r["url"].endswith("/samples/test_Arson_00.mp4") for r in seen)   # the video
    # the page's own requests stay on disk; and no request at all (the browser's own pages
    # included) goes to a host
    ours = [r["url"] for r in seen if r["document"] == page]
    assert ours and [u for u in ours if not u.startswith(("file:", "data:", "blob:"))] == []
    remote = [r["url"] for r in seen if r["url"].split(":")[0].lower() in
              ("http", "https", "ws", "wss", "ftp")]
    assert remote == []
    print(f"\nscreenshots: {screens}")


def test_one_row_per_video_sorting_and_filters(browser, scores, truth):
    videos, _ = truth
    _open(browser, scores)
    rows = browser.find_elements(By.CSS_SELECTOR, "#videos tbody tr")
    assert len(rows) == len(videos) == 12
    assert _shown(browser) == list(videos)              # videos.csv's order at first
    peak = browser.find_element(By.CSS_SELECTOR, '#videos th[data-key="peak"]')
    peak.click()
    by_peak = sorted(videos, key=lambda v: -videos[v]["peak"])
    assert _shown(browser) == by_peak
    peak.click()
    assert _shown(browser) == by_peak[::-1]
    browser.find_element(By.CSS_SELECTOR, '#videos th[data-key="id"]').click()
    assert _shown(browser) == sorted(videos)
    browser.find_element(By.CSS_SELECTOR, '#videos th[data-key="truth"]').click()
    classes = [videos[v]["class_name"] for v in _shown(browser)]
    assert classes == sorted(classes)

    Select(browser.find_element(By.ID, "f-truth")).select_by_value("normal")
    assert set(_shown(browser)) == {v for v in videos if videos[v]["class_name"] == "Normal"}
    Select(browser.find_element(By.ID, "f-truth")).select_by_value("")
    Select(browser.find_element(By.ID, "f-class")).select_by_value("Fighting")
    assert set(_shown(browser)) == {v for v in videos if videos[v]["class_name"] == "Fighting"}
    Select(browser.find_element(By.ID, "f-class")).select_by_value("")
    Select(browser.find_element(By.ID, "f-pred")).select_by_value("Arson")
    assert set(_shown(browser)) == {v for v in videos if videos[v]["pred"] == "Arson"}
    Select(browser.find_element(By.ID, "f-pred")).select_by_value("")
    browser.find_element(By.ID, "f-text").send_keys("ROAD")
    assert set(_shown(browser)) == {v for v in videos if "road" in v.lower()} != set()
    browser.find_element(By.ID, "f-text").send_keys(Keys.BACKSPACE * 4)      # (an input event)
    assert len(_shown(browser)) == 12

    for threshold in (0.3, 0.85):                     # the alarms' filters follow the slider
        spans = _alarms(truth, _set_threshold(browser, threshold))
        hit = {v: [any(s <= b and e >= a for s, e in spans[v]) for a, b in videos[v]["intervals"]]
               for v in videos}
        misses = {v for v in videos if not all(hit[v])}
        false = {v for v in videos if any(not any(s <= b and e >= a
                                                   for a, b in videos[v]["intervals"])
                                           for s, e in spans[v])}
        browser.find_element(By.ID, "f-misses").click()
        assert set(_shown(browser)) == misses
        browser.find_element(By.ID, "f-misses").click()
        browser.find_element(By.ID, "f-false-alarms").click()
        assert set(_shown(browser)) == false
        browser.find_element(By.ID, "f-false-alarms").click()
    assert misses and false or threshold == 0.85        # 0.85 misses intervals of this demo


def test_clicking_a_row_draws_that_videos_timeline(browser, scores, screens, truth):
    videos, rule = truth
    _open(browser, scores)
    plot = browser.find_element(By.ID, "timeline-plot")
    empty = plot.screenshot_as_png
    vid = "test_Fighting_01"
    _select_video(browser, vid)
    v = videos[vid]
    drawn = browser.execute_script(
        "const m = vadReport.models; return {t: Array.from(m.curve.data.t), "
        "hi: Array.from(m.curve.data.hi), truth: [Array.from(m.truth.data.left), "
        "Array.from(m.truth.data.right)], alarms: [Array.from(m.alarms.data.left), "
        "Array.from(m.alarms.data.right)], title: m.timeline.title.text, "
        "heading: document.getElementById('video-title').textContent}")
    assert drawn["title"] == vid and drawn["heading"].startswith(vid)
    assert len(drawn["hi"]) == len(v["p"]) == 96             # 96 frames: drawn one by one
    np.testing.assert_array_equal(np.float32(drawn["hi"]), v["p"])
    np.testing.assert_allclose(drawn["t"], v["t"], atol=1e-6)
    (a, b), = v["intervals"]
    np.testing.assert_allclose(drawn["truth"], [[v["t"][a]], [v["t"][b] + 1 / v["fps"]]],
                               atol=1e-6)
    spans = _alarms(truth, rule.threshold)[vid]
    assert spans
    np.testing.assert_allclose(drawn["alarms"], [[v["t"][s] for s, _ in spans],
                                                 [v["t"][e] + 1 / v["fps"] for _, e in spans]],
                               atol=1e-6)
    assert wait_for(browser, "true", 0.5) and plot.screenshot_as_png != empty   # pixels drawn
    browser.execute_script("document.getElementById('video-pane').scrollIntoView()")
    browser.save_screenshot(str(screens / "video.png"))


def test_threshold_slider_gives_pythons_alarm_count(browser, scores, truth):
    _open(browser, scores)
    videos, rule = truth
    counted = int(browser.find_element(By.ID, "n-alarms").text)
    assert counted == sum(map(len, _alarms(truth, rule.threshold).values()))
    totals = set()
    for asked in (0.05, 0.3, 0.47, 0.62, 0.81, 0.95):
        threshold = _set_threshold(browser, asked)
        assert threshold == asked
        spans = _alarms(truth, threshold)
        assert int(browser.find_element(By.ID, "n-alarms").text) == sum(map(len, spans.values()))
        per_video = browser.execute_script(
            "return Object.fromEntries(vadReport.videos.map(v => [v.id, v.spans]))")
        assert {k: [tuple(s) for s in val] for k, val in per_video.items()} == spans
        totals.add(sum(map(len, spans.values())))
    assert len(totals) >= 3                             # the thresholds do change the count
    slider = browser.find_element(By.ID, "threshold")  # and so do the keys on the slider
    _set_threshold(browser, 0.5)
    slider.send_keys(Keys.ARROW_RIGHT * 7)
    threshold = browser.execute_script("return vadReport.state.threshold")
    assert threshold == pytest.approx(0.57)
    assert int(browser.find_element(By.ID, "n-alarms").text) == \
        sum(map(len, _alarms(truth, threshold).values()))
    line = browser.execute_script("return vadReport.models.threshold.location")
    assert line == threshold


def test_timeline_and_video_stay_in_sync(browser, scores):
    _open(browser, scores)
    _select_video(browser, "test_Road_Accidents_00")
    assert wait_for(browser, "document.getElementById('player').readyState >= 1", 10)
    src = browser.execute_script("return document.getElementById('player').getAttribute('src')")
    assert (scores / src).resolve() == (scores.parent.parent / "samples" /
                                        "test_Road_Accidents_00.mp4").resolve()
    assert browser.execute_script("return document.getElementById('player').currentTime") == 0
    plot = browser.find_element(By.ID, "timeline-plot")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot)
    # the timeline figure is the top 260 px of the element: click its middle, right of centre
    top = plot.size["height"] / 2
    ActionChains(browser).move_to_element_with_offset(plot, 80, 130 - top).click().perform()
    assert wait_for(browser, "document.getElementById('player').currentTime > 0", 5)
    now, cursor = browser.execute_script(
        "return [document.getElementById('player').currentTime, "
        "vadReport.models.cursor.location]")
    assert 1 < now < 12 and now == pytest.approx(cursor, abs=1e-3)
    # the other way: the video moves, the cursor follows
    browser.execute_script("document.getElementById('player').currentTime = 2.5")
    assert wait_for(browser, "Math.abs(vadReport.models.cursor.location - 2.5) < 1e-3", 5)
    browser.execute_script("document.getElementById('player').play()")
    assert wait_for(browser, "vadReport.models.cursor.location > 2.75", 10)
    browser.execute_script("document.getElementById('player').pause()")
