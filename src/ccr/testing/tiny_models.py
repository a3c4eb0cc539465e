"""Tiny random models of every family the package loads, built on the spot.

The hub is out of reach in tests and in the demo, so each builder writes a directory in the on-disk
layout of the real hub model (config, weights, tokenizer or processor files) and the package's
ordinary loaders (`from_pretrained`, `SentenceTransformer(path)`, CTranslate2 conversion) read it
unchanged: no code path exists only for tests. Weights are random, tokenizers are trained on a small
built-in multilingual text (hand-written sentences plus toy-corpus captions), and everything is
deterministic under the seed. The same builders, given real dimensions, make the random
full-size models the benchmarks need (`MARIAN_OPUS_MT_SHAPE`, `CLIP_VIT_B32`).
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import operator
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from ccr.testing.toy_corpus import CAPTION_LANGS, scene_caption, toy_scenes

LANGS = CAPTION_LANGS  # en, de, fr, cs, zh, ja
LLAVA_FAMILIES = ("llava", "llava_next")
MARIAN_OPUS_MT_SHAPE: dict[str, Any] = {"d_model": 512, "layers": 6, "heads": 8, "ffn": 2048, "vocab_pad_to": 58101}
CLIP_VIT_B32: dict[str, Any] = {
    "vision_hidden": 768, "text_hidden": 512, "layers": 12, "image_size": 224, "patch": 32, "projection_dim": 512,
}
TINY_CLIP_PROJECTION_DIM = 16

# The same 24 sentences in every language (people, animals, places, colours, shapes), so the
# Marian tokenizers see parallel text; the toy captions add the corpus vocabulary.
_SENTENCES = {
    "en": """A man is riding a horse on the beach.
Two children are playing with a red ball in the park.
A woman in a blue dress is reading a book.
A black dog runs across the green grass.
A white cat sleeps on a wooden chair.
Three people are walking down a busy street.
A little girl is eating an ice cream.
An old man sits on a bench near the river.
A group of friends is sitting around a table.
A brown bird is standing on a branch.
A boy in a yellow shirt jumps into the lake.
Two dogs are running in the snow.
A woman is cooking dinner in the kitchen.
A yellow taxi drives past a tall building.
The mountains are covered with snow.
A fisherman stands in a small boat.
A cyclist rides along a road in the city.
A cow is grazing in a field.
A musician plays the guitar on the street.
People are waiting at the train station.
A child draws a green triangle and a red star.
A large square window looks over the sea.
A horse and a sheep stand next to a fence.
A man in a black jacket holds an umbrella.""",
    "de": """Ein Mann reitet am Strand auf einem Pferd.
Zwei Kinder spielen im Park mit einem roten Ball.
Eine Frau in einem blauen Kleid liest ein Buch.
Ein schwarzer Hund rennt über das grüne Gras.
Eine weiße Katze schläft auf einem Holzstuhl.
Drei Menschen gehen eine belebte Straße entlang.
Ein kleines Mädchen isst ein Eis.
Ein alter Mann sitzt auf einer Bank am Fluss.
Eine Gruppe von Freunden sitzt um einen Tisch.
Ein brauner Vogel steht auf einem Ast.
Ein Junge in einem gelben Hemd springt in den See.
Zwei Hunde rennen im Schnee.
Eine Frau kocht in der Küche das Abendessen.
Ein gelbes Taxi fährt an einem hohen Gebäude vorbei.
Die Berge sind mit Schnee bedeckt.
Ein Fischer steht in einem kleinen Boot.
Ein Radfahrer fährt eine Straße in der Stadt entlang.
Eine Kuh grast auf einer Wiese.
Ein Musiker spielt auf der Straße Gitarre.
Menschen warten am Bahnhof.
Ein Kind zeichnet ein grünes Dreieck und einen roten Stern.
Ein großes quadratisches Fenster blickt auf das Meer.
Ein Pferd und ein Schaf stehen neben einem Zaun.
Ein Mann in einer schwarzen Jacke hält einen Regenschirm.""",
    "fr": """Un homme monte à cheval sur la plage.
Deux enfants jouent avec un ballon rouge dans le parc.
Une femme en robe bleue lit un livre.
Un chien noir court sur l'herbe verte.
Un chat blanc dort sur une chaise en bois.
Trois personnes marchent dans une rue animée.
Une petite fille mange une glace.
Un vieil homme est assis sur un banc près de la rivière.
Un groupe d'amis est assis autour d'une table.
Un oiseau brun se tient sur une branche.
Un garçon en chemise jaune saute dans le lac.
Deux chiens courent dans la neige.
Une femme prépare le dîner dans la cuisine.
Un taxi jaune passe devant un grand immeuble.
Les montagnes sont couvertes de neige.
Un pêcheur se tient debout dans une petite barque.
Un cycliste roule sur une route en ville.
Une vache broute dans un champ.
Un musicien joue de la guitare dans la rue.
Des gens attendent à la gare.
Un enfant dessine un triangle vert et une étoile rouge.
Une grande fenêtre carrée donne sur la mer.
Un cheval et un mouton se tiennent près d'une clôture.
Un homme en veste noire tient un parapluie.""",
    "cs": """Muž jede na koni po pláži.
Dvě děti si hrají v parku s červeným míčem.
Žena v modrých šatech čte knihu.
Černý pes běží po zelené trávě.
Bílá kočka spí na dřevěné židli.
Tři lidé jdou po rušné ulici.
Malá holčička jí zmrzlinu.
Starý muž sedí na lavičce u řeky.
Skupina přátel sedí kolem stolu.
Hnědý pták stojí na větvi.
Chlapec ve žlutém tričku skáče do jezera.
Dva psi běží ve sněhu.
Žena vaří v kuchyni večeři.
Žluté taxi projíždí kolem vysoké budovy.
Hory jsou pokryté sněhem.
Rybář stojí v malé loďce.
Cyklista jede po silnici ve městě.
Kráva se pase na louce.
Hudebník hraje na ulici na kytaru.
Lidé čekají na nádraží.
Dítě kreslí zelený trojúhelník a červenou hvězdu.
Velké čtvercové okno hledí na moře.
Kůň a ovce stojí vedle plotu.
Muž v černé bundě drží deštník.""",
    "zh": """一个男人在海滩上骑马。
两个孩子在公园里玩一个红色的球。
一个穿蓝色裙子的女人在看书。
一只黑狗跑过绿色的草地。
一只白猫睡在木椅子上。
三个人走在繁忙的街道上。
一个小女孩在吃冰淇淋。
一位老人坐在河边的长椅上。
一群朋友围坐在桌子旁。
一只棕色的鸟站在树枝上。
一个穿黄色衬衫的男孩跳进湖里。
两只狗在雪地里奔跑。
一个女人在厨房里做晚饭。
一辆黄色的出租车驶过一座高楼。
群山被白雪覆盖。
一个渔夫站在一条小船上。
一个骑自行车的人在城市的路上骑行。
一头牛在田野里吃草。
一位音乐家在街上弹吉他。
人们在火车站等车。
一个孩子画了一个绿色的三角形和一颗红色的星星。
一扇大方窗朝向大海。
一匹马和一只羊站在栅栏旁边。
一个穿黑色夹克的男人拿着一把伞。""",
    "ja": """男性が浜辺で馬に乗っている。
二人の子供が公園で赤いボールで遊んでいる。
青いドレスの女性が本を読んでいる。
黒い犬が緑の芝生を走っている。
白い猫が木の椅子の上で眠っている。
三人の人がにぎやかな通りを歩いている。
小さな女の子がアイスクリームを食べている。
老人が川のそばのベンチに座っている。
友達のグループがテーブルを囲んで座っている。
茶色の鳥が枝の上に立っている。
黄色いシャツの少年が湖に飛び込む。
二匹の犬が雪の中を走っている。
女性が台所で夕食を作っている。
黄色いタクシーが高いビルの前を通り過ぎる。
山々は雪に覆われている。
漁師が小さな船の上に立っている。
自転車に乗った人が町の道を走っている。
牛が野原で草を食べている。
音楽家が通りでギターを弾いている。
人々が駅で電車を待っている。
子供が緑の三角と赤い星を描いている。
大きな四角い窓から海が見える。
馬と羊が柵のそばに立っている。
黒いジャケットの男性が傘を持っている。""",
}

# Real multi-target OPUS-MT models expect a target-language token first in the source; the tiny
# stand-ins carry the same tokens in their vocabulary so the model table's prefix works on both.
_TARGET_LANG_TOKENS = {"zh": (">>cmn_Hans<<", ">>cmn_Hant<<")}


def training_text(langs: tuple[str, ...] = LANGS) -> list[str]:
    """The text every tiny tokenizer is trained on; also handy as sample input in tests."""
    for lang in langs:
        if lang not in _SENTENCES:
            raise ValueError(f"no tiny-model text for language {lang!r}; choose from {', '.join(LANGS)}")
    scenes = toy_scenes(n_train=40, n_val=0, n_test=0, seed=0, videos=8)
    lines: list[str] = []
    for lang in langs:
        lines += _SENTENCES[lang].splitlines()
        lines += [scene_caption(scene, lang, variant) for scene in scenes for variant in (0, 1)]
    return lines


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch for one model init without disturbing the caller's random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _heads(hidden: int) -> int:
    """Real checkpoints use 64-wide heads; tiny widths keep four heads so attention stays multi-head."""
    return hidden // 64 if hidden >= 256 else 4


def _words(tokenizer: Any, lines: list[str]) -> Counter[str]:
    """Split text exactly as the tokenizer will at run time, so the learned pieces fit its input."""
    backend = tokenizer.backend_tokenizer
    counts: Counter[str] = Counter()
    for line in lines:
        if backend.normalizer is not None:
            line = backend.normalizer.normalize_str(line)
        counts.update(word for word, _ in backend.pre_tokenizer.pre_tokenize_str(line))
    return counts


def _bpe_merges(
    words: Counter[tuple[str, ...]], n_merges: int, join: Callable[[str, str], str]
) -> list[tuple[str, str]]:
    """Greedy BPE whose ties go to the smaller pair of strings.

    The `tokenizers` trainers break ties by ids assigned in hash order, so their vocabularies
    change from one process to the next; this one learns the same merges on every run.
    """
    symbols = [list(word) for word in words]
    freq = list(words.values())
    pairs: Counter[tuple[str, str]] = Counter()
    where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for i, word in enumerate(symbols):
        for pair in zip(word, word[1:]):
            pairs[pair] += freq[i]
            where[pair].add(i)
    heap = [(-count, pair) for pair, count in pairs.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    learned: set[tuple[str, str]] = set()  # a later merge can rebuild a learned pair; never learn it twice
    while heap and len(merges) < n_merges:
        negative, pair = heapq.heappop(heap)
        if pair in learned or pairs.get(pair, 0) != -negative:
            continue
        merges.append(pair)
        learned.add(pair)
        merged = join(*pair)
        changed: set[tuple[str, str]] = set()
        for i in sorted(where.pop(pair)):
            word, out, k = symbols[i], [], 0
            while k < len(word):
                if k + 1 < len(word) and (word[k], word[k + 1]) == pair:
                    out.append(merged)
                    k += 2
                else:
                    out.append(word[k])
                    k += 1
            for old in zip(word, word[1:]):
                pairs[old] -= freq[i]
                changed.add(old)
            for new in zip(out, out[1:]):
                pairs[new] += freq[i]
                where[new].add(i)
                changed.add(new)
            symbols[i] = out
        for p in sorted(changed):
            if pairs[p] > 0:
                heapq.heappush(heap, (-pairs[p], p))
            else:
                del pairs[p]
    return merges


# --- Marian (OPUS-MT) ------------------------------------------------------------------------------


def _train_spm(lines: list[str], vocab_size: int, normalization: str = "nmt_nfkc") -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, num_threads=1,
        normalization_rule_name=normalization,
    )
    return model.getvalue()


def build_tiny_marian(
    out_dir: Path,
    src_lang: str = "en",
    tgt_lang: str = "de",
    *,
    d_model: int = 16,
    layers: int = 1,
    heads: int = 2,
    ffn: int = 32,
    vocab_pad_to: int | None = None,
    text: tuple[list[str], list[str]] | None = None,
    seed: int = 0,
) -> Path:
    """A Marian model in OPUS-MT's layout (source.spm, target.spm, joint vocab.json).

    `vocab_pad_to` appends dummy pieces so that `build_tiny_marian(d, **MARIAN_OPUS_MT_SHAPE)` costs what
    opus-mt-en-de costs (output projection and softmax included) when a benchmark has no real weights.
    `text` (source lines, target lines) is what the tokenizers learn from (default `training_text` of
    each language): the learned toy models start from this builder, so they keep its layout. Their
    tokenizers skip NFKC, whose character map (240 KB per file) they ship as package data without needing.
    """
    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    if src_lang == tgt_lang:
        raise ValueError(f"source and target language are both {src_lang!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = ["</s>", "<unk>", *_TARGET_LANG_TOKENS.get(tgt_lang, ())]
    for k, (side, lang) in enumerate((("source", src_lang), ("target", tgt_lang))):
        lines = training_text((lang,)) if text is None else text[k]
        model_bytes = _train_spm(lines, vocab_size=400, normalization="nmt_nfkc" if text is None else "identity")
        (out_dir / f"{side}.spm").write_bytes(model_bytes)
        sp = spm.SentencePieceProcessor(model_proto=model_bytes)
        tokens += [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_unknown(i) or sp.is_control(i))]
    tokens = list(dict.fromkeys(tokens))
    if vocab_pad_to is not None:
        missing = vocab_pad_to - len(tokens) - 1
        if missing < 0:
            raise ValueError(f"vocab_pad_to={vocab_pad_to} is below the {len(tokens) + 1} real pieces")
        tokens += [f"<dummy_{i}>" for i in range(missing)]
    tokens.append("<pad>")
    vocab = {token: i for i, token in enumerate(tokens)}
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")

    tokenizer = MarianTokenizer(
        source_spm=str(out_dir / "source.spm"), target_spm=str(out_dir / "target.spm"),
        vocab=str(out_dir / "vocab.json"), source_lang=src_lang, target_lang=tgt_lang,
    )
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab), decoder_vocab_size=len(vocab), d_model=d_model, encoder_layers=layers,
        decoder_layers=layers, encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn, max_position_embeddings=512, pad_token_id=pad, eos_token_id=0, bos_token_id=0,
        decoder_start_token_id=pad, forced_eos_token_id=0, activation_function="swish", scale_embedding=True,
        share_encoder_decoder_embeddings=True, tie_word_embeddings=True, static_position_embeddings=True,
    )
    with _seeded(seed):
        model = MarianMTModel(config).eval()
    model.generation_config.bad_words_ids = [[pad]]
    model.generation_config.num_beams = 4
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


# --- CLIP ----------------------------------------------------------------------------------------


def _clip_tokenizer(text: list[str]) -> Any:
    """Byte-level BPE with CLIP's end-of-word marks, in CLIP's vocabulary order (bytes, bytes</w>, merges)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    words = _words(CLIPTokenizer(), text)
    marked = Counter({(*word[:-1], word[-1] + "</w>"): count for word, count in words.items()})
    merges = _bpe_merges(marked, n_merges=300, join=operator.add)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [*alphabet, *(c + "</w>" for c in alphabet), *(a + b for a, b in merges)]
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*tokens, "<|startoftext|>", "<|endoftext|>"]))}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    tokenizer.model_max_length = 77
    return tokenizer


def build_tiny_clip(
    out_dir: Path,
    *,
    text_hidden: int = 32,
    vision_hidden: int = 32,
    layers: int = 2,
    image_size: int = 32,
    patch: int = 8,
    projection_dim: int = TINY_CLIP_PROJECTION_DIM,
    text: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """A CLIP dual encoder; `build_tiny_clip(d, **CLIP_VIT_B32)` gives a random ViT-B/32-sized one.

    `text` is what the tokenizer learns its pieces from (default `training_text()`): the learned toy
    models start from these builders, so they keep the layout, and learn pieces from their own text.
    """
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPVisionConfig,
    )

    out_dir = Path(out_dir)
    tokenizer = _clip_tokenizer(training_text() if text is None else text)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
    )
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=4 * text_hidden,
        num_hidden_layers=layers, num_attention_heads=_heads(text_hidden), max_position_embeddings=77,
        projection_dim=projection_dim, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision_config = CLIPVisionConfig(
        hidden_size=vision_hidden, intermediate_size=4 * vision_hidden, num_hidden_layers=layers,
        num_attention_heads=_heads(vision_hidden), image_size=image_size, patch_size=patch,
        projection_dim=projection_dim,
    )
    config = CLIPConfig(
        text_config=text_config.to_dict(), vision_config=vision_config.to_dict(), projection_dim=projection_dim,
    )
    with _seeded(seed):
        model = CLIPModel(config).eval()
    model.save_pretrained(out_dir)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


# --- BERT, XLM-R, sentence-transformers ------------------------------------------------------------


def build_tiny_bert(
    out_dir: Path,
    *,
    hidden: int = 32,
    layers: int = 2,
    langs: tuple[str, ...] = LANGS,
    lowercase: bool = False,
    text: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """A BERT encoder with a WordPiece vocabulary trained on `text` (default: `training_text(langs)`),
    cased like mBERT unless `lowercase`."""
    from transformers import BertConfig, BertModel, BertTokenizer

    out_dir = Path(out_dir)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    base = BertTokenizer(vocab={t: i for i, t in enumerate(specials)}, do_lower_case=lowercase, strip_accents=lowercase)
    words = _words(base, training_text(langs) if text is None else text)
    pieces = Counter({(word[0], *("##" + c for c in word[1:])): count for word, count in words.items()})
    merges = _bpe_merges(pieces, n_merges=500, join=lambda a, b: a + b[2:])
    tokens = [*specials, *sorted({p for word in pieces for p in word}), *(a + b[2:] for a, b in merges)]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=lowercase, strip_accents=lowercase, model_max_length=512)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=_heads(hidden),
        intermediate_size=4 * hidden, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
    )
    with _seeded(seed):
        model = BertModel(config).eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_xlmr(out_dir: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """An XLM-R encoder: SentencePiece pieces over every language in a unigram tokenizer, XLM-R's special ids."""
    import sentencepiece as spm
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    out_dir = Path(out_dir)
    sp = spm.SentencePieceProcessor(model_proto=_train_spm(training_text(), vocab_size=800))
    pieces = [
        (sp.id_to_piece(i), sp.get_score(i))
        for i in range(sp.get_piece_size())
        if not (sp.is_unknown(i) or sp.is_control(i))
    ]
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces, ("<mask>", 0.0)]
    tokenizer = XLMRobertaTokenizer(vocab=vocab, model_max_length=512)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=_heads(hidden),
        intermediate_size=4 * hidden, max_position_embeddings=514, type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    with _seeded(seed):
        model = XLMRobertaModel(config).eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_sentence_transformer(
    out_dir: Path,
    *,
    multilingual: bool = False,
    output_dim: int | None = None,
    hidden: int = 32,
    layers: int = 2,
    text: list[str] | None = None,
    seed: int = 0,
) -> Path:
    """BERT + mean pooling + unit length, the shape of all-MiniLM-L6-v2.

    With `output_dim` a linear head replaces the normalisation, as in the sentence-transformers
    multilingual CLIP text encoders, whose outputs live in the CLIP embedding space. `text` is the
    tokenizer's training text, as in `build_tiny_bert`.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as st

    out_dir = Path(out_dir)
    langs = LANGS if multilingual else ("en",)
    with tempfile.TemporaryDirectory() as tmp:
        # uncased like all-MiniLM-L6-v2; the multilingual stand-in keeps case like its real counterparts
        build_tiny_bert(Path(tmp), hidden=hidden, layers=layers, langs=langs, lowercase=not multilingual, text=text,
                        seed=seed)
        modules: list[Any] = [st.Transformer(tmp, max_seq_length=128), st.Pooling(hidden, pooling_mode="mean")]
        if output_dim is None:
            modules.append(st.Normalize())
        else:
            with _seeded(seed + 1):
                modules.append(st.Dense(hidden, output_dim, bias=True, activation_function=None))
        model = SentenceTransformer(modules=modules, device="cpu")
        model.save(str(out_dir), create_model_card=False)
    return out_dir


# --- LLaVA family ----------------------------------------------------------------------------------

# Prompt and chat words join the captioner's tokenizer text so prompts do not fall apart into bytes.
_LLAVA_PROMPTS = (
    "USER: ASSISTANT:",
    "Describe the image in one sentence.",
    "Describe this video briefly.",
    "What is shown in this picture? Answer in English.",
    "List the objects, their colours and where they are.",
)
_LLAVA_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% if not loop.last %} {% endif %}{% endfor %}{% if add_generation_prompt %} ASSISTANT:{% endif %}"
)


def _llava_tokenizer(text: list[str], n_merges: int) -> Any:
    """Byte-level BPE in the Llama/LLaVA special-token layout, padding on the left for batched generation."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    lines = [*text, *_LLAVA_PROMPTS]
    words = Counter(word for line in lines for word, _ in byte_level.pre_tokenize_str(line))
    merges = _bpe_merges(Counter({tuple(word): count for word, count in words.items()}), n_merges, operator.add)
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    tokens = [*specials, *sorted(pre_tokenizers.ByteLevel.alphabet()), *(a + b for a, b in merges)]
    bpe = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(dict.fromkeys(tokens))}, merges=merges))
    bpe.add_special_tokens(specials)
    bpe.pre_tokenizer = byte_level
    bpe.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        padding_side="left", extra_special_tokens={"image_token": "<image>"},
    )
    tokenizer.add_bos_token = True
    return tokenizer


def build_tiny_llava(
    out_dir: Path,
    *,
    family: str = "llava",
    image_size: int = 32,
    patch: int = 8,
    hidden: int = 32,
    layers: int = 2,
    feature_layer: int = -2,
    text: list[str] | None = None,
    n_merges: int = 300,
    seed: int = 0,
) -> Path:
    """A LLaVA-family captioner (CLIP vision tower + Llama) with chat template and left padding.

    Only the families whose processor this environment can build are offered: LLaVA-OneVision and
    LLaVA-NeXT-Video need a video processor, and every transformers video processor requires torchvision.
    `text` is what the tokenizer learns its `n_merges` pieces from (default `training_text()`), and
    `feature_layer` the vision layer the language model sees (-2 as in LLaVA-1.5): the learned toy
    describer starts from this builder, so it keeps the layout, with its own sizes and vocabulary.
    """
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
        LlavaProcessor,
    )

    if family not in LLAVA_FAMILIES:
        raise ValueError(f"unknown LLaVA family {family!r}; choose from {', '.join(LLAVA_FAMILIES)}")
    out_dir = Path(out_dir)
    n_patches = (image_size // patch) ** 2
    tokenizer = _llava_tokenizer(training_text() if text is None else text, n_merges)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=4,
        image_size=image_size, patch_size=patch, projection_dim=hidden,
    )
    language = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    common = {
        "vision_config": vision, "text_config": language, "image_token_index": image_id,
        "image_seq_length": n_patches, "vision_feature_select_strategy": "default",
        "vision_feature_layer": feature_layer,
    }
    processor_args = {
        "tokenizer": tokenizer, "patch_size": patch, "vision_feature_select_strategy": "default",
        "chat_template": _LLAVA_CHAT_TEMPLATE, "num_additional_image_tokens": 1,
    }
    crop = {"height": image_size, "width": image_size}
    if family == "llava":
        image_processor = CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size=crop)
        processor = LlavaProcessor(image_processor=image_processor, **processor_args)
        model_class, config = LlavaForConditionalGeneration, LlavaConfig(**common)
    else:
        pinpoints = [[image_size * h, image_size * w] for h in (1, 2) for w in (1, 2)]
        image_processor = LlavaNextImageProcessorPil(
            size={"shortest_edge": image_size}, crop_size=crop, image_grid_pinpoints=pinpoints,
        )
        processor = LlavaNextProcessor(image_processor=image_processor, **processor_args)
        config = LlavaNextConfig(image_grid_pinpoints=pinpoints, **common)
        model_class = LlavaNextForConditionalGeneration
    with _seeded(seed):
        model = model_class(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


# --- registry ------------------------------------------------------------------------------------

TINY_BUILDERS: dict[str, Callable[[Path], Path]] = {
    **{
        f"marian-{src}-{tgt}": partial(build_tiny_marian, src_lang=src, tgt_lang=tgt)
        for xx in ("de", "fr", "cs", "zh", "ja")
        for src, tgt in (("en", xx), (xx, "en"))
    },
    "clip": build_tiny_clip,
    "bert": build_tiny_bert,
    "xlmr": build_tiny_xlmr,
    "minilm": build_tiny_sentence_transformer,
    "multilingual-minilm": partial(build_tiny_sentence_transformer, multilingual=True),
    "mclip-text": partial(build_tiny_sentence_transformer, multilingual=True, output_dim=TINY_CLIP_PROJECTION_DIM),
    **{family.replace("_", "-"): partial(build_tiny_llava, family=family) for family in LLAVA_FAMILIES},
}
