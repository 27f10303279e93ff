//! The n-gram metrics: BLEU and GLEU as nltk 3.10.4 computes them for one sentence
//! (`sentence_bleu`, `sentence_gleu`, default settings, one reference), and ROUGE-N / ROUGE-L
//! F-measure as `rouge-score` 0.1.2's `RougeScorer` does (its default tokenizer, no stemmer).

use std::collections::HashMap;

/// Whitespace tokens as Python's `str.split()` makes them (its whitespace includes U+001C..U+001F,
/// which Unicode's White_Space does not).
pub fn python_split(s: &str) -> Vec<&str> {
    s.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)).filter(|t| !t.is_empty()).collect()
}

fn counts<T: std::hash::Hash + Eq>(tokens: &[T], n: usize) -> HashMap<&[T], usize> {
    let mut map = HashMap::new();
    if n > 0 && tokens.len() >= n {
        for w in tokens.windows(n) {
            *map.entry(w).or_insert(0) += 1;
        }
    }
    map
}

/// `nltk.translate.bleu_score.sentence_bleu([reference], hypothesis)`: uniform weights over 1- to
/// 4-grams, no smoothing (a missing order counts as `sys.float_info.min`, nltk's `method0`), the
/// brevity penalty, and 0 when no unigram matches.
pub fn bleu(reference: &[&str], hypothesis: &[&str]) -> f64 {
    let mut numerators = [0usize; 4];
    let mut denominators = [0usize; 4];
    for n in 1..=4 {
        let hyp = counts(hypothesis, n);
        let refc = counts(reference, n);
        numerators[n - 1] = hyp.iter().map(|(g, &c)| c.min(refc.get(g).copied().unwrap_or(0))).sum();
        denominators[n - 1] = hyp.values().sum::<usize>().max(1);
    }
    if numerators[0] == 0 {
        return 0.0;
    }
    let (r, c) = (reference.len(), hypothesis.len());
    let bp = if c > r {
        1.0
    } else if c == 0 {
        0.0
    } else {
        (1.0 - r as f64 / c as f64).exp()
    };
    let logs: Vec<f64> = (0..4)
        .map(|i| {
            let p = if numerators[i] == 0 { f64::MIN_POSITIVE } else { numerators[i] as f64 / denominators[i] as f64 };
            0.25 * p.ln()
        })
        .collect();
    bp * fsum(&logs).exp()
}

/// `nltk.translate.gleu_score.sentence_gleu([reference], hypothesis)`: 1- to 4-grams, matches over
/// the larger of the two n-gram totals.
pub fn gleu(reference: &[&str], hypothesis: &[&str]) -> f64 {
    let mut tp = 0usize;
    let mut tpfp = 0usize;
    let mut tpfn = 0usize;
    for n in 1..=4 {
        let hyp = counts(hypothesis, n);
        let refc = counts(reference, n);
        tpfp += hyp.values().sum::<usize>();
        tpfn += refc.values().sum::<usize>();
        tp += hyp.iter().map(|(g, &c)| c.min(refc.get(g).copied().unwrap_or(0))).sum::<usize>();
    }
    let all = tpfp.max(tpfn);
    if all == 0 { 0.0 } else { tp as f64 / all as f64 }
}

/// rouge-score's default tokenizer: lowercase, every run of characters other than `[a-z0-9]` is a
/// separator (so letters outside ASCII never make tokens).
pub fn rouge_tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    lower.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit())).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 }
}

/// ROUGE-N F-measure: `score(target=reference, prediction=input)`.
pub fn rouge_n(reference: &[String], prediction: &[String], n: usize) -> f64 {
    let target = counts(reference, n);
    let pred = counts(prediction, n);
    let overlap: usize = target.iter().map(|(g, &c)| c.min(pred.get(g).copied().unwrap_or(0))).sum();
    let target_total: usize = target.values().sum();
    let pred_total: usize = pred.values().sum();
    let precision = overlap as f64 / pred_total.max(1) as f64;
    let recall = overlap as f64 / target_total.max(1) as f64;
    fmeasure(precision, recall)
}

/// ROUGE-L F-measure (longest common subsequence of tokens).
pub fn rouge_l(reference: &[String], prediction: &[String]) -> f64 {
    if reference.is_empty() || prediction.is_empty() {
        return 0.0;
    }
    let mut row = vec![0usize; prediction.len() + 1];
    for r in reference {
        let mut diag = 0;
        for (j, p) in prediction.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if r == p { diag + 1 } else { up.max(row[j]) };
            diag = up;
        }
    }
    let lcs = row[prediction.len()] as f64;
    fmeasure(lcs / prediction.len() as f64, lcs / reference.len() as f64)
}

/// An exactly rounded sum, as Python's `math.fsum` (Shewchuk's partials).
fn fsum(values: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &v in values {
        let mut x = v;
        let mut kept = 0;
        for i in 0..partials.len() {
            let mut y = partials[i];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    partials.iter().rev().fold(0.0, |acc, p| acc + p)
}
