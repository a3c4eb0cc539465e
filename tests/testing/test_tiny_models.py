"""The tiny stand-ins load through the ordinary APIs, run, and come out the same on every build."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from ccr.testing.tiny_models import (  # noqa: E402
    LLAVA_FAMILIES,
    TINY_BUILDERS,
    TINY_CLIP_PROJECTION_DIM,
    build_tiny_marian,
    training_text,
)

MARIAN_NAMES = sorted(name for name in TINY_BUILDERS if name.startswith("marian-"))
SAMPLE = {lang: training_text((lang,))[:3] for lang in ("en", "de", "fr", "cs", "zh", "ja")}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Build each stand-in at most once per test run, on first use."""
    root = tmp_path_factory.mktemp("tiny")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = TINY_BUILDERS[name](root / name)
        return built[name]

    return get


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _images() -> list:
    from PIL import Image

    return [Image.new("RGB", (64, 40), (220, 30, 30)), Image.new("RGB", (32, 32), (30, 70, 220))]


def test_registry_has_every_documented_name() -> None:
    expected = {
        *(f"marian-en-{xx}" for xx in ("de", "fr", "cs", "zh", "ja")),
        *(f"marian-{xx}-en" for xx in ("de", "fr", "cs", "zh", "ja")),
        "clip", "bert", "xlmr", "minilm", "multilingual-minilm", "mclip-text", "llava", "llava-next",
    }
    assert expected == set(TINY_BUILDERS)


@pytest.mark.parametrize("name", MARIAN_NAMES)
def test_marian_converts_to_ctranslate2_and_translates(
    name: str, tiny: Callable[[str], Path], tmp_path: Path
) -> None:
    import ctranslate2
    from ctranslate2.converters import TransformersConverter
    from transformers import AutoTokenizer, MarianTokenizer

    _, src, tgt = name.split("-")
    model_dir = tiny(name)
    vocab = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))
    config = json.loads((model_dir / "config.json").read_text())
    assert (vocab["</s>"], vocab["<unk>"], vocab["<pad>"]) == (0, 1, len(vocab) - 1)
    assert config["decoder_start_token_id"] == config["pad_token_id"] == vocab["<pad>"]

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert isinstance(tokenizer, MarianTokenizer)
    texts = SAMPLE[src][:2]
    if tgt == "zh":
        texts = [f">>cmn_Hans<< {t}" for t in texts]
    source = [tokenizer.convert_ids_to_tokens(ids) for ids in tokenizer(texts).input_ids]
    assert all(tokens[-1] == "</s>" and "<unk>" not in tokens for tokens in source)
    if tgt == "zh":
        assert all(tokens[0] == ">>cmn_Hans<<" for tokens in source)

    ct2_dir = tmp_path / "ct2"
    TransformersConverter(str(model_dir)).convert(str(ct2_dir), quantization="int8")
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", compute_type="int8", intra_threads=1)
    results = translator.translate_batch(source, beam_size=2, max_decoding_length=6)
    assert len(results) == 2
    for result in results:
        hypothesis = result.hypotheses[0]
        assert 0 < len(hypothesis) <= 6 and all(token in vocab for token in hypothesis)
        assert isinstance(tokenizer.decode(tokenizer.convert_tokens_to_ids(hypothesis), skip_special_tokens=True), str)


def test_marian_ctranslate2_float32_matches_transformers_greedy(tiny: Callable[[str], Path], tmp_path: Path) -> None:
    """Token-for-token agreement shows the conversion read the layout as the real OPUS-MT one."""
    import ctranslate2
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import MarianMTModel, MarianTokenizer

    model_dir = tiny("marian-en-de")
    tokenizer = MarianTokenizer.from_pretrained(model_dir)
    model = MarianMTModel.from_pretrained(model_dir).eval()
    batch = tokenizer(SAMPLE["en"], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, num_beams=1, max_new_tokens=8, forced_eos_token_id=None)
    hf = [tokenizer.convert_ids_to_tokens([i for i in row[1:].tolist() if i not in (0, model.config.pad_token_id)])
          for row in out]

    TransformersConverter(str(model_dir)).convert(str(tmp_path / "f32"))
    translator = ctranslate2.Translator(str(tmp_path / "f32"), device="cpu", compute_type="float32")
    source = [tokenizer.convert_ids_to_tokens(ids) for ids in tokenizer(SAMPLE["en"]).input_ids]
    ct2 = [r.hypotheses[0] for r in translator.translate_batch(source, beam_size=1, max_decoding_length=8)]
    assert ct2 == hf


def test_marian_vocab_pads_to_a_real_size(tmp_path: Path) -> None:
    from transformers import MarianConfig

    model_dir = build_tiny_marian(tmp_path / "padded", "de", "en", vocab_pad_to=1500)
    vocab = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))
    config = MarianConfig.from_pretrained(model_dir)
    assert len(vocab) == config.vocab_size == 1500 and vocab["<pad>"] == 1499 == config.pad_token_id


def test_clip_loads_with_auto_processor(tiny: Callable[[str], Path]) -> None:
    import torch
    from transformers import (
        AutoProcessor,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPTokenizer,
    )

    model_dir = tiny("clip")
    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    assert isinstance(processor.image_processor, CLIPImageProcessorPil)
    assert isinstance(processor.tokenizer, CLIPTokenizer)
    inputs = processor(text=SAMPLE["en"][:2], images=_images(), return_tensors="pt", padding=True)
    assert tuple(inputs["pixel_values"].shape) == (2, 3, 32, 32)
    with torch.no_grad():
        out = model(**inputs)
    assert tuple(out.logits_per_image.shape) == (2, 2)
    assert tuple(out.text_embeds.shape) == tuple(out.image_embeds.shape) == (2, TINY_CLIP_PROJECTION_DIM)


@pytest.mark.parametrize("name", ["bert", "xlmr"])
def test_text_encoders_load_with_auto_classes(name: str, tiny: Callable[[str], Path]) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir = tiny(name)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    texts = [lines[0] for lines in SAMPLE.values()]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    assert (batch["input_ids"] != tokenizer.unk_token_id).all()
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert tuple(hidden.shape) == (len(texts), batch["input_ids"].shape[1], model.config.hidden_size)


@pytest.mark.parametrize(
    ("name", "dim", "unit_norm"),
    [("minilm", 32, True), ("multilingual-minilm", 32, True), ("mclip-text", TINY_CLIP_PROJECTION_DIM, False)],
)
def test_sentence_transformers_load_from_modules_json(
    name: str, dim: int, unit_norm: bool, tiny: Callable[[str], Path]
) -> None:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model_dir = tiny(name)
    assert (model_dir / "modules.json").is_file()
    model = SentenceTransformer(str(model_dir), device="cpu")
    texts = [lines[0] for lines in SAMPLE.values()]
    embeddings = model.encode(texts)
    assert embeddings.shape == (len(texts), dim) and model.get_embedding_dimension() == dim
    norms = np.linalg.norm(embeddings, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == unit_norm


@pytest.mark.parametrize("name", [family.replace("_", "-") for family in LLAVA_FAMILIES])
def test_llava_batched_generation_equals_unbatched(name: str, tiny: Callable[[str], Path]) -> None:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model_dir = tiny(name)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    assert processor.tokenizer.padding_side == "left"
    prompts = ["Describe the image.", "What colour is the shape in this picture, and where is it?"]
    texts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}], add_generation_prompt=True
        )
        for p in prompts
    ]
    assert texts[0].startswith("USER: <image>") and texts[0].endswith("ASSISTANT:")
    images = _images()
    with torch.no_grad():
        batch = processor(images=images, text=texts, return_tensors="pt", padding=True)
        batched = model.generate(**batch, max_new_tokens=6, do_sample=False)[:, batch["input_ids"].shape[1]:]
        for i in range(2):
            single = processor(images=[images[i]], text=[texts[i]], return_tensors="pt")
            alone = model.generate(**single, max_new_tokens=6, do_sample=False)[:, single["input_ids"].shape[1]:]
            assert batched[i].tolist() == alone[0].tolist()
    assert len(processor.batch_decode(batched, skip_special_tokens=True)) == 2


@pytest.mark.parametrize("name", ["marian-en-zh", "clip", "bert", "xlmr", "mclip-text", "llava-next"])
def test_builds_are_byte_identical_under_the_seed(name: str, tiny: Callable[[str], Path], tmp_path: Path) -> None:
    again = TINY_BUILDERS[name](tmp_path / name)
    assert _digest(again) == _digest(tiny(name))


def test_builds_are_identical_in_a_fresh_interpreter(tiny: Callable[[str], Path], tmp_path: Path) -> None:
    """Another process has other hash seeds: set or dict order leaking into a vocabulary would show here."""
    names = ["marian-en-de", "clip", "bert", "xlmr", "llava"]
    script = (
        "import sys; from pathlib import Path; from ccr.testing.tiny_models import TINY_BUILDERS\n"
        "for name in sys.argv[2:]: TINY_BUILDERS[name](Path(sys.argv[1]) / name)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path), *names], check=True, env=env, capture_output=True)
    for name in names:
        assert _digest(tmp_path / name) == _digest(tiny(name)), name


def test_another_seed_gives_other_weights(tiny: Callable[[str], Path], tmp_path: Path) -> None:
    other = build_tiny_marian(tmp_path / "seed1", "en", "de", seed=1)
    reference = _digest(tiny("marian-en-de"))
    changed = {f for f, digest in _digest(other).items() if digest != reference[f]}
    assert changed == {"model.safetensors"}
