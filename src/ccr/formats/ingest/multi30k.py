"""Multi30K Task 1 parallel text files, in the layout of the public multi30k/dataset repository.

``data/task1/raw/{split}.{lang}[.gz]`` holds one caption per line; line i of every language file
and of ``data/task1/image_splits/{split}.txt`` describe the same image, so alignment is the only
link between a caption and its image and a line-count mismatch is fatal. Also accepted:
``{split}_images.txt`` / ``{split}.images`` next to the text files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ccr.errors import CcrError
from ccr.formats.ingest.records import BadRecord, Caption, Media, Record
from ccr.formats.ingest.textio import iter_lines, open_bytes
from ccr.paths import regular_file

if TYPE_CHECKING:
    from ccr.formats.ingest.records import IngestOptions

_TEXT_FILE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)\.(?P<lang>[a-z]{2,3})(?:\.gz)?$")
_NOT_LANGS = {"txt", "gz", "csv", "tsv", "json", "md", "sh", "py", "tok", "bpe"}
# The split everyone reports as "test" is test_2016_flickr; later test sets keep their own names
# so that ingesting a whole directory does not merge different benchmarks into one split.
_SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "dev": "val", "test": "test", "test_2016_flickr": "test"}


def read(src: Path, opts: IngestOptions) -> Iterator[Record]:
    text_dir, only_split = _locate(src)
    groups = _text_files(text_dir)
    if only_split is not None:
        groups = {only_split: groups[only_split]}
    if not groups:
        raise CcrError(f"{src}: no Multi30K text files ({{split}}.{{lang}}, e.g. train.en) found")
    if opts.split is not None and len(groups) > 1:
        raise CcrError(
            f"{src}: --split {opts.split} would put the Multi30K splits {', '.join(sorted(groups))} into one; "
            f"point at one file instead, e.g. {text_dir / (sorted(groups)[0] + '.en')}"
        )
    for name in sorted(groups):
        yield from _read_split(name, groups[name], _image_list(text_dir, name), opts)


def _locate(src: Path) -> tuple[Path, str | None]:
    """The directory holding the text files, and the one split to read when a file was given."""
    if src.is_file():
        match = _TEXT_FILE.match(src.name)
        if match is None or match["lang"] in _NOT_LANGS:
            raise CcrError(f"{src}: not a Multi30K text file; expected a name like train.en or test_2016_flickr.de")
        return src.parent, match["split"]
    if not src.is_dir():
        raise CcrError(f"{src}: no such file or directory")
    for candidate in (src, src / "raw", src / "task1" / "raw", src / "data" / "task1" / "raw"):
        if candidate.is_dir() and _text_files(candidate):
            return candidate, None
    raise CcrError(f"{src}: no Multi30K text files ({{split}}.{{lang}}, e.g. train.en) found, nor under raw/ or data/task1/raw/")


def _text_files(directory: Path) -> dict[str, dict[str, Path]]:
    groups: dict[str, dict[str, Path]] = {}
    for path in sorted(directory.iterdir()):
        match = _TEXT_FILE.match(path.name)
        if match is not None and match["lang"] not in _NOT_LANGS and not path.is_dir():
            groups.setdefault(match["split"], {}).setdefault(match["lang"], regular_file(path, "Multi30K text file"))
    return groups


def _image_list(text_dir: Path, split: str) -> Path:
    candidates = [
        text_dir.parent / "image_splits" / f"{split}.txt",
        text_dir / "image_splits" / f"{split}.txt",
        text_dir / f"{split}_images.txt",
        text_dir / f"{split}.images",
        text_dir.parent / f"{split}_images.txt",
    ]
    for path in candidates:
        if path.exists():
            return regular_file(path, "Multi30K image list")
    raise CcrError(f"no image list for Multi30K split {split!r}: looked for {', '.join(str(p) for p in candidates)}")


def _count_lines(path: Path) -> int:
    """Counts like ``wc -l`` plus a last line without a newline, reading in blocks."""
    count = 0
    last = b"\n"
    with open_bytes(path) as fh:
        while block := fh.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _read_split(name: str, texts: dict[str, Path], images: Path, opts: IngestOptions) -> Iterator[Record]:
    expected = _count_lines(images)
    for path in texts.values():
        found = _count_lines(path)
        if found != expected:
            raise CcrError(
                f"Multi30K files are not aligned: {images} has {expected} lines but {path} has {found}"
            )
    split = opts.split or _SPLIT_NAMES.get(name, name)
    modality = opts.modality or "image"
    keys: list[tuple[Media, int] | None] = []
    seen: dict[str, int] = {}
    for lineno, line in iter_lines(images):
        if isinstance(line, BadRecord):
            keys.append(None)
            yield line
            continue
        file_name = line.strip().split("#", 1)[0]
        if not file_name:
            keys.append(None)
            yield BadRecord(f"{images}:{lineno}", "empty image file name")
            continue
        media = Media(media_id=PurePosixPath(file_name).stem, split=split, modality=modality, path=file_name,
                      source=f"{images}:{lineno}")
        keys.append((media, seen.get(media.media_id, 0)))
        if media.media_id not in seen:
            yield media
        seen[media.media_id] = seen.get(media.media_id, 0) + 1
    for lang, path in texts.items():
        for (lineno, line), key in zip(iter_lines(path), keys, strict=True):
            if key is None:
                yield BadRecord(f"{path}:{lineno}", f"its image line {images}:{lineno} is unreadable")
                continue
            media, k = key
            caption_id = f"{media.media_id}#{lang}#{k}"
            if isinstance(line, BadRecord):
                yield BadRecord(line.source, line.reason, row_id=caption_id)
                continue
            yield Caption(caption_id=caption_id, media_id=media.media_id, split=split, lang=lang, text=line,
                          source=f"{path}:{lineno}", media=media)
