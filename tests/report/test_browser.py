"""The report opened from disk in a real headless Chromium: numbers, sorting, filters, search, paging.

Every visit also checks that the page logged no console or page error and asked for nothing but
files of its own directory.
"""

from __future__ import annotations

import pytest
from report_browser import Visit, visit

from ccr.corpus.corpus import Corpus
from ccr.corpus.info import caption_counts
from ccr.report import build_report


@pytest.fixture
def open_report(browser, scored_report):
    visits: list[Visit] = []

    def opener(fragment: str = "", index=scored_report) -> Visit:
        seen = visit(browser, index, fragment)
        visits.append(seen)
        return seen

    yield opener
    for seen in visits:
        assert seen.errors == []
        assert seen.requests and all(url.startswith("file://") for url in seen.requests), seen.requests
        seen.page.close()


def _choose(v: Visit, selector: str, value: str) -> None:
    v.page.select_option(selector, value)
    v.wait_pairs()


def _total(v: Visit) -> int:
    return int(v.page.get_attribute("#pairs-count", "data-total"))


def test_overview_numbers_equal_the_corpus(open_report, scored):
    v = open_report("#overview")
    shown = v.page.eval_on_selector_all(
        "#caption-counts tbody tr", "rows => rows.map(r => [r.dataset.key, Number(r.querySelector('[data-count]').dataset.count)])")
    expected = caption_counts(Corpus.open(scored.corpus))
    assert dict(shown) == {"|".join([r["split"], r["lang"], r["origin"], r["model"] or ""]): r["captions"]
                           for r in expected.iter_rows(named=True)}
    assert v.page.text_content("#total-rows .value") == str(scored.mt_rows)
    assert v.page.text_content("#total-failures .value") == "1"
    assert v.page.text_content("#total-captions .value") == str(Corpus.open(scored.corpus).count("captions"))
    history = v.page.text_content("#history")
    assert "ingest" in history and "tiny/minilm @ tiny-v1" in history
    assert "empty caption" in v.page.text_content("#failure-counts")


def test_sort_filter_search_and_paging(open_report, scored):
    v = open_report("#pairs")
    v.wait_pairs()
    assert _total(v) == scored.mt_rows and len(v.pair_ids()) == 50
    _choose(v, "#sort", "xl_sim")
    assert v.pair_ids()[0] == scored.worst_xl
    _choose(v, "#dir", "desc")
    assert v.pair_ids()[0] == scored.best_xl
    assert "sort=xl_sim" in v.page.url and "dir=desc" in v.page.url
    # clicking a score's header sorts by it, lowest first
    v.page.click("th[data-sort='xl_sim']")
    v.wait_pairs()
    assert v.pair_ids()[0] == scored.worst_xl
    # filters narrow the rows, and combine
    _choose(v, "#filter-lang", "fr")
    fr = v.pair_ids()
    assert _total(v) == len(fr) == (scored.mt_rows - 1) // 2 and all(":fr:" in i for i in fr)
    _choose(v, "#filter-lang", "")
    _choose(v, "#filter-keep", "false")
    assert sorted(v.pair_ids()) == sorted(scored.noisy)
    _choose(v, "#filter-keep", "")
    # search looks in every text and id
    v.page.fill("#search", "NOBODY")
    v.page.press("#search", "Enter")
    v.wait_pairs()
    assert sorted(v.pair_ids()) == sorted(f"ghost#en#0|mt:{lang}:tiny@1" for lang in ("de", "fr"))
    v.page.fill("#search", "")
    v.page.press("#search", "Enter")
    v.wait_pairs()
    # paging through the sorted rows
    first = v.pair_ids()
    v.page.click("#next")
    v.wait_pairs()
    second = v.pair_ids()
    assert len(second) == scored.mt_rows - 50 and not set(first) & set(second)
    assert v.page.input_value("#page") == "2" and v.page.is_disabled("#next")
    v.page.click("#prev")
    v.wait_pairs()
    assert v.pair_ids() == first
    assert v.page.get_attribute("tr.pair", "data-index") == "0"


def test_a_link_restores_the_view(open_report, scored):
    v = open_report("#pairs?sort=xl_sim&dir=desc&page=2&size=25")
    v.wait_pairs()
    assert v.page.input_value("#sort") == "xl_sim" and v.page.input_value("#size") == "25"
    assert v.page.get_attribute("tr.pair", "data-index") == "25"
    v.page.goto(v.page.url.split("#")[0] + "#pairs?sort=xl_sim")
    v.wait_pairs()
    assert v.pair_ids()[0] == scored.worst_xl


def test_details_placeholders_extremes_distributions_and_failures(open_report, scored):
    v = open_report("#pairs")
    v.wait_pairs()
    assert v.page.locator(f"tr.pair[data-id='{scored.ghost_mt}'] .placeholder").count() == 1
    assert v.page.text_content(f"tr.pair[data-id='{scored.query_mt}'] td.src").startswith("[de] ")
    assert v.page.locator("tr.pair img.thumb").count() == 48
    v.page.click(f"tr.pair[data-id^='{scored.described_media}#']")
    v.page.wait_for_selector("tr.detail ul.descriptions li")
    detail = v.page.text_content("tr.detail")
    assert "A flat drawing with shapes" in detail and "coloured shapes" in detail

    v.page.click("#tabs a[data-tab='extremes']")
    v.page.wait_for_selector("#extreme-xl_sim")
    assert v.page.get_attribute("#extreme-xl_sim .lowest .pair-card", "data-id") == scored.worst_xl
    assert v.page.get_attribute("#extreme-xl_sim .highest .pair-card", "data-id") == scored.best_xl

    v.page.click("#tabs a[data-tab='distributions']")
    assert v.page.locator("figure.distribution svg.histogram").count() == 6
    assert v.page.locator("#dist-xl_sim rect.noisy").count() >= 1

    v.page.click("#tabs a[data-tab='failures']")
    v.page.wait_for_selector("#list-failures table")
    v.page.wait_for_selector("#list-problems table")
    assert scored.failed_caption in v.page.text_content("#list-failures")
    assert "empty caption" in v.page.text_content("#list-failures")
    assert "images/ghost.png" in v.page.text_content("#list-problems")


def test_captions_only_corpus_opens(open_report, toy_corpus, tmp_path):
    index = build_report(toy_corpus, tmp_path / "r").index
    v = open_report("#pairs", index=index)
    v.wait_pairs()
    assert _total(v) == Corpus.open(toy_corpus).count("captions")
    assert v.page.locator("#pairs-table thead th.sortable").count() == 0
    _choose(v, "#filter-lang", "de")
    assert _total(v) == 24
