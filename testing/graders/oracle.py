#!/usr/bin/env python3
"""Reference scores for the openai-grader plugin's text_similarity metrics.

Computes, with the Python implementations OpenAI's graders guide names (pinned:
nltk==3.10.4, rapidfuzz==3.14.6, rouge-score==0.1.2), every metric for a seeded corpus of
(input, reference) pairs, and writes testing/graders/expected.jsonl (one pair per line, every
metric's value). The crate's test `agrees_with_the_python_oracles` (src/tests.rs) asserts its own scores agree.

    pip install --break-system-packages nltk==3.10.4 rapidfuzz==3.14.6 rouge-score==0.1.2
    python3 testing/graders/oracle.py            # writes expected.jsonl (and the alnum table)
    python3 testing/graders/oracle.py --check    # regenerates in memory, diffs, exits 1 on a change

The settings, the same as the plugin's:
- fuzzy_match: fuzz.WRatio(input, reference, processor=utils.default_process) / 100
- bleu, gleu: sentence_bleu / sentence_gleu([reference.split()], input.split()), nltk defaults
- meteor: meteor_score([reference.split()], input.split()) with an empty WordNet (the sandbox has
  no WordNet database: see the plugin README for what that changes)
- rouge_N, rouge_l: RougeScorer([...], use_stemmer=False).score(reference, input)[...].fmeasure

It also writes reward-plugins/openai-grader/src/alnum.rs, the table of characters rapidfuzz's
default_process keeps (measured from rapidfuzz itself, character by character).
"""

import argparse
import json
import random
import sys
import warnings
from pathlib import Path

import nltk
import rapidfuzz
import rouge_score
from nltk.translate.bleu_score import sentence_bleu
from nltk.translate.gleu_score import sentence_gleu
from nltk.translate.meteor_score import meteor_score
from rapidfuzz import fuzz, utils
from rouge_score import rouge_scorer

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ROOT / "testing/graders/expected.jsonl"
ALNUM = ROOT / "reward-plugins/openai-grader/src/alnum.rs"
VERSIONS = {"nltk": "3.10.4", "rapidfuzz": "3.14.6", "rouge_score": "0.1.2"}
SEED = 20261203
METRICS = ["fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"]


class EmptyWordNet:
    """A WordNet with no synsets: METEOR's synonym stage matches nothing."""

    def synsets(self, _word):
        return []


ROUGE = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rouge3", "rouge4", "rouge5", "rougeL"], use_stemmer=False)


def scores(inp, ref, wordnet=None):
    hyp, refs = inp.split(), [ref.split()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bleu = float(sentence_bleu(refs, hyp))
    rouge = ROUGE.score(ref, inp)
    out = {
        "fuzzy_match": fuzz.WRatio(inp, ref, processor=utils.default_process) / 100.0,
        "bleu": bleu,
        "gleu": float(sentence_gleu(refs, hyp)),
        "meteor": float(meteor_score(refs, hyp, wordnet=wordnet or EmptyWordNet())),
    }
    for n in range(1, 6):
        out[f"rouge_{n}"] = rouge[f"rouge{n}"].fmeasure
    out["rouge_l"] = rouge["rougeL"].fmeasure
    return out


WORDS = (
    "the a of to and in is it that for on was with as by at from this be are or an have not which one had "
    "model answer reward policy gradient training sample reference output score grader token sentence "
    "running runs ran runner connection connected connecting connections happily happiness generous "
    "generalization relational conditional hopeful goodness adjustable replacement adoption agreed "
    "plastered motoring hopping falling fizzed failing filing cats ponies caresses skies dying news "
    "innings proceed sky flies tried controlling rolling probate cease electrical formalize triplicate"
).split()
UNICODE_WORDS = ["café", "naïve", "Straße", "İstanbul", "ΟΔΥΣΣΕΥΣ", "Москва", "東京", "日本語", "😀", "é", "Ǆemal", "x²", "½", "ﬁne", "Ⅻ"]
PUNCT = [",", ".", "!", "?", ";", ":", "-", "--", "(", ")", '"', "'", "...", "/", "_", "#", "$", "%"]


def sentence(rng, n, pool=WORDS):
    return " ".join(rng.choice(pool) for _ in range(n))


def typo(rng, s):
    if not s:
        return s
    chars = list(s)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(chars))
        op = rng.randrange(3)
        if op == 0:
            chars[i] = rng.choice("abcdefghijklmnopqrstuvwxyz")
        elif op == 1:
            del chars[i]
            if not chars:
                break
        else:
            chars.insert(i, rng.choice("abcdefghijklmnopqrstuvwxyz"))
    return "".join(chars)


def corpus():
    rng = random.Random(SEED)
    pairs = [
        ("", ""),
        ("", "reference text"),
        ("input text", ""),
        ("   ", "  "),
        ("!!!", "???"),
        ("Paris", "Paris"),
        ("paris", "Paris"),
        ("The capital of France is Paris.", "Paris"),
        ("Paris", "The capital of France is Paris."),
        ("a", "a"),
        ("a b", "b a"),
        ("cat", "dog"),
        ("running runs", "ran runner"),
        ("connected connections", "connecting connection"),
        ("the cat sat on the mat", "the cat sat on the mat"),
        ("the cat sat on the mat", "the mat sat on the cat"),
        ("It is a guide to action which ensures that the military always obeys the commands of the party",
         "It is a guide to action that ensures that the military will forever heed Party commands"),
        ("new york mets vs atlanta braves", "atlanta braves vs new york mets"),
        ("fuzzy wuzzy was a bear", "wuzzy fuzzy was a bear"),
        ("this is a test", "this is a test!"),
        ("x" * 70 + " tail", "head " + "x" * 70 + " tail" + " y" * 80),
    ]
    kinds = ["identical", "disjoint", "reordered", "punctuation", "case", "unicode", "empty", "long", "overlap", "typo", "substring", "whitespace"]
    while len(pairs) < 320:
        kind = kinds[len(pairs) % len(kinds)]
        base = sentence(rng, rng.randint(1, 14))
        if kind == "identical":
            pairs.append((base, base))
        elif kind == "disjoint":
            pairs.append((base, sentence(rng, rng.randint(1, 14), UNICODE_WORDS + ["zebra", "quartz", "vortex", "jumps"])))
        elif kind == "reordered":
            toks = base.split()
            rng.shuffle(toks)
            pairs.append((" ".join(toks), base))
        elif kind == "punctuation":
            toks = [t + (rng.choice(PUNCT) if rng.random() < 0.4 else "") for t in base.split()]
            pairs.append((" ".join(toks), base) if rng.random() < 0.5 else (base, " ".join(toks)))
        elif kind == "case":
            toks = [t.upper() if rng.random() < 0.5 else t.capitalize() for t in base.split()]
            pairs.append((" ".join(toks), base))
        elif kind == "unicode":
            a = " ".join(rng.choice(UNICODE_WORDS + WORDS[:20]) for _ in range(rng.randint(1, 8)))
            b = " ".join(rng.choice(UNICODE_WORDS + WORDS[:20]) for _ in range(rng.randint(1, 8)))
            pairs.append((a, b))
        elif kind == "empty":
            pairs.append(("", base) if rng.random() < 0.5 else (base, ""))
        elif kind == "long":
            a = sentence(rng, rng.randint(60, 200))
            toks = a.split()
            for _ in range(rng.randint(0, 30)):
                toks[rng.randrange(len(toks))] = rng.choice(WORDS)
            b = " ".join(toks[rng.randint(0, 10):])
            pairs.append((a, b) if rng.random() < 0.5 else (b, a))
        elif kind == "overlap":
            toks = base.split()
            keep = [t for t in toks if rng.random() < 0.6] + sentence(rng, rng.randint(0, 5)).split()
            pairs.append((" ".join(keep), base))
        elif kind == "typo":
            pairs.append((typo(rng, base), base))
        elif kind == "substring":
            toks = base.split()
            i = rng.randrange(len(toks))
            j = rng.randint(i + 1, len(toks))
            pairs.append((" ".join(toks[i:j]), base) if rng.random() < 0.5 else (base, " ".join(toks[i:j])))
        elif kind == "whitespace":
            toks = base.split()
            seps = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u001f", " \r\n "]
            pairs.append(("".join(t + rng.choice(seps) for t in toks), base))
    # fuzzy_match's partial alignment with a needle of more than 64 characters (rapidfuzz's C++
    # then aligns only at the matching blocks): a long text quoting a passage of the other, with
    # typos, either way round, and lengths 1.5x to 10x apart. A separate generator, so the pairs
    # above stay as they were.
    rng = random.Random(SEED + 1)
    for k in range(40):
        needle = sentence(rng, rng.randint(12, 60))
        before, after = sentence(rng, rng.randint(5, 40)), sentence(rng, rng.randint(5, 60))
        if k % 4 == 1:
            needle = typo(rng, typo(rng, needle))
        haystack = f"{before} {needle if k % 4 != 2 else typo(rng, needle)} {after}"
        if k % 4 == 3:
            haystack = sentence(rng, rng.randint(40, 200))
        pairs.append((needle, haystack) if k % 2 == 0 else (haystack, needle))
    # The same over a two-to-five-letter alphabet, where the best alignment is often not at a
    # matching block: rapidfuzz 3.14.6 still finds it (it agrees with its pure-Python fallback,
    # which scores every window, and disagrees with difflib-block alignment on most such pairs).
    rng = random.Random(SEED + 2)
    for k in range(20):
        alphabet = "abcd "[: rng.randint(2, 5)]
        n = rng.randint(65, 120)
        needle = "".join(rng.choice(alphabet) for _ in range(n))
        haystack = "".join(rng.choice(alphabet) for _ in range(int(n * rng.uniform(1.6, 4))))
        pairs.append((needle, haystack) if k % 2 == 0 else (haystack, needle))
    return pairs


def expected_lines():
    lines = []
    for i, (inp, ref) in enumerate(corpus()):
        row = {"id": i, "input": inp, "reference": ref}
        row.update(scores(inp, ref))
        lines.append(json.dumps(row, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def alnum_source():
    ranges = []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        if utils.default_process("a" + chr(c) + "a") not in ("a a", "aa"):
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
    body = "\n".join(f"    (0x{a:X}, 0x{b:X})," for a, b in ranges)
    return (
        "//! The characters rapidfuzz 3.14.6's `utils.default_process` keeps (all others become spaces),\n"
        "//! as ranges of code points. Generated by `testing/graders/oracle.py` from rapidfuzz itself,\n"
        "//! character by character: do not edit.\n\n"
        "/// Inclusive code point ranges, sorted.\n"
        f"pub const RANGES: [(u32, u32); {len(ranges)}] = [\n{body}\n];\n\n"
        "/// Whether `default_process` keeps `c`.\n"
        "pub fn is_alnum(c: char) -> bool {\n"
        "    let c = c as u32;\n"
        # As rustfmt (the repository's rustfmt.toml) lays it out, so `cargo fmt --check` passes.
        "    RANGES\n"
        "        .binary_search_by(|&(lo, hi)| {\n"
        "            if hi < c {\n"
        "                std::cmp::Ordering::Less\n"
        "            } else if lo > c {\n"
        "                std::cmp::Ordering::Greater\n"
        "            } else {\n"
        "                std::cmp::Ordering::Equal\n"
        "            }\n"
        "        })\n"
        "        .is_ok()\n"
        "}\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="regenerate in memory and diff against the committed files")
    args = parser.parse_args()
    found = {"nltk": nltk.__version__, "rapidfuzz": rapidfuzz.__version__, "rouge_score": getattr(rouge_score, "__version__", None)}
    try:
        from importlib.metadata import version

        found["rouge_score"] = version("rouge-score")
    except Exception:
        pass
    if found != VERSIONS:
        sys.exit(f"oracle: want {VERSIONS}, found {found}")
    outputs = {EXPECTED: expected_lines(), ALNUM: alnum_source()}
    if args.check:
        stale = [str(p.relative_to(ROOT)) for p, text in outputs.items() if not p.exists() or p.read_text() != text]
        if stale:
            sys.exit(f"oracle: out of date (run testing/graders/oracle.py): {', '.join(stale)}")
        print(f"oracle: {EXPECTED.relative_to(ROOT)} and {ALNUM.relative_to(ROOT)} are up to date")
        return
    for p, text in outputs.items():
        p.write_text(text)
    print(f"oracle: wrote {len(corpus())} pairs to {EXPECTED.relative_to(ROOT)}, and {ALNUM.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
