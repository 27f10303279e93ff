//! The Porter stemmer in nltk's default mode (`PorterStemmer()`, `NLTK_EXTENSIONS`), which METEOR's
//! stem stage uses: the 1980 algorithm with nltk's irregular forms and its changes to steps 1a, 1b,
//! 1c and 2. Works on Unicode scalar values; anything but `a e i o u` (and `y` after a vowel) is a
//! consonant, as in nltk.

/// nltk's irregular forms: the word, then its stem.
const POOL: [(&str, &str); 16] = [
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

type Word = Vec<char>;

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

/// Consonant flags for every position (a `y` is a consonant when it starts the word or follows a
/// vowel).
fn flags(w: &[char]) -> Vec<bool> {
    let mut out: Vec<bool> = Vec::with_capacity(w.len());
    for (i, &c) in w.iter().enumerate() {
        let cons = if is_vowel(c) {
            false
        } else if c == 'y' {
            i == 0 || !out[i - 1]
        } else {
            true
        };
        out.push(cons);
    }
    out
}

fn is_consonant(w: &[char], i: usize) -> bool {
    flags(&w[..=i])[i]
}

fn measure(stem: &[char]) -> usize {
    let f = flags(stem);
    f.windows(2).filter(|p| !p[0] && p[1]).count()
}

fn contains_vowel(stem: &[char]) -> bool {
    flags(stem).iter().any(|&c| !c)
}

fn ends_double_consonant(w: &[char]) -> bool {
    w.len() >= 2 && w[w.len() - 1] == w[w.len() - 2] && is_consonant(w, w.len() - 1)
}

fn ends_cvc(w: &[char]) -> bool {
    let n = w.len();
    (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && !matches!(w[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1))
}

fn ends_with(w: &[char], suffix: &str) -> bool {
    let s: Vec<char> = suffix.chars().collect();
    w.len() >= s.len() && w[w.len() - s.len()..] == s[..]
}

fn strip(w: &[char], suffix: &str) -> Word {
    w[..w.len() - suffix.chars().count()].to_vec()
}

fn with(mut stem: Word, replacement: &str) -> Word {
    stem.extend(replacement.chars());
    stem
}

enum Cond {
    None,
    MeasureGt0,
}

impl Cond {
    fn holds(&self, stem: &[char]) -> bool {
        match self {
            Cond::None => true,
            Cond::MeasureGt0 => measure(stem) > 0,
        }
    }
}

/// nltk's `_apply_rule_list` for plain suffix rules: the first rule whose suffix matches decides.
fn apply(word: Word, rules: &[(&str, &str, Cond)]) -> Word {
    for (suffix, replacement, cond) in rules {
        if ends_with(&word, suffix) {
            let stem = strip(&word, suffix);
            return if cond.holds(&stem) { with(stem, replacement) } else { word };
        }
    }
    word
}

fn step1a(w: Word) -> Word {
    if ends_with(&w, "ies") && w.len() == 4 {
        return with(strip(&w, "ies"), "ie");
    }
    apply(w, &[("sses", "ss", Cond::None), ("ies", "i", Cond::None), ("ss", "ss", Cond::None), ("s", "", Cond::None)])
}

fn step1b(w: Word) -> Word {
    if ends_with(&w, "ied") {
        return with(strip(&w, "ied"), if w.len() == 4 { "ie" } else { "i" });
    }
    if ends_with(&w, "eed") {
        let stem = strip(&w, "eed");
        return if measure(&stem) > 0 { with(stem, "ee") } else { w };
    }
    let mut intermediate = None;
    for suffix in ["ed", "ing"] {
        if ends_with(&w, suffix) {
            let stem = strip(&w, suffix);
            if contains_vowel(&stem) {
                intermediate = Some(stem);
                break;
            }
        }
    }
    let Some(stem) = intermediate else { return w };
    for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
        if ends_with(&stem, suffix) {
            return with(strip(&stem, suffix), replacement);
        }
    }
    if ends_double_consonant(&stem) {
        let last = stem[stem.len() - 1];
        return if !matches!(last, 'l' | 's' | 'z') {
            let mut s = stem[..stem.len() - 2].to_vec();
            s.push(last);
            s
        } else {
            stem
        };
    }
    if measure(&stem) == 1 && ends_cvc(&stem) { with(stem, "e") } else { stem }
}

fn step1c(w: Word) -> Word {
    if ends_with(&w, "y") {
        let stem = strip(&w, "y");
        return if stem.len() > 1 && is_consonant(&stem, stem.len() - 1) { with(stem, "i") } else { w };
    }
    w
}

fn step2(w: Word) -> Word {
    if ends_with(&w, "alli") && measure(&strip(&w, "alli")) > 0 {
        return step2(with(strip(&w, "alli"), "al"));
    }
    let rules = [
        ("ational", "ate"),
        ("tional", "tion"),
        ("enci", "ence"),
        ("anci", "ance"),
        ("izer", "ize"),
        ("bli", "ble"),
        ("alli", "al"),
        ("entli", "ent"),
        ("eli", "e"),
        ("ousli", "ous"),
        ("ization", "ize"),
        ("ation", "ate"),
        ("ator", "ate"),
        ("alism", "al"),
        ("iveness", "ive"),
        ("fulness", "ful"),
        ("ousness", "ous"),
        ("aliti", "al"),
        ("iviti", "ive"),
        ("biliti", "ble"),
        ("fulli", "ful"),
    ];
    for (suffix, replacement) in rules {
        if ends_with(&w, suffix) {
            let stem = strip(&w, suffix);
            return if measure(&stem) > 0 { with(stem, replacement) } else { w };
        }
    }
    // nltk's `logi` rule: the condition is on the word without its last three letters.
    if ends_with(&w, "logi") {
        return if measure(&w[..w.len() - 3]) > 0 { with(strip(&w, "logi"), "log") } else { w };
    }
    w
}

fn step3(w: Word) -> Word {
    apply(
        w,
        &[
            ("icate", "ic", Cond::MeasureGt0),
            ("ative", "", Cond::MeasureGt0),
            ("alize", "al", Cond::MeasureGt0),
            ("iciti", "ic", Cond::MeasureGt0),
            ("ical", "ic", Cond::MeasureGt0),
            ("ful", "", Cond::MeasureGt0),
            ("ness", "", Cond::MeasureGt0),
        ],
    )
}

fn step4(w: Word) -> Word {
    let suffixes = [
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou", "ism", "ate", "iti", "ous", "ive",
        "ize",
    ];
    for suffix in suffixes {
        if ends_with(&w, suffix) {
            let stem = strip(&w, suffix);
            let ok = measure(&stem) > 1 && (suffix != "ion" || matches!(stem.last(), Some('s' | 't')));
            return if ok { stem } else { w };
        }
    }
    w
}

fn step5a(w: Word) -> Word {
    if ends_with(&w, "e") {
        let stem = strip(&w, "e");
        let m = measure(&stem);
        if m > 1 || (m == 1 && !ends_cvc(&stem)) {
            return stem;
        }
    }
    w
}

fn step5b(w: Word) -> Word {
    if ends_with(&w, "ll") && measure(&w[..w.len() - 1]) > 1 {
        return w[..w.len() - 1].to_vec();
    }
    w
}

/// `PorterStemmer().stem(word)`.
pub fn stem(word: &str) -> String {
    let lower = word.to_lowercase();
    if let Some((_, s)) = POOL.iter().find(|(w, _)| *w == lower) {
        return (*s).to_owned();
    }
    if word.chars().count() <= 2 {
        return lower;
    }
    let mut w: Word = lower.chars().collect();
    w = step1a(w);
    w = step1b(w);
    w = step1c(w);
    w = step2(w);
    w = step3(w);
    w = step4(w);
    w = step5a(w);
    w = step5b(w);
    w.into_iter().collect()
}
