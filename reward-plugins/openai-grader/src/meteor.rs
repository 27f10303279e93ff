//! METEOR as nltk 3.10.4's `meteor_score([reference], hypothesis)` computes it (alpha 0.9, beta 3,
//! gamma 0.5, tokens lowercased), with its exact and Porter-stem matching stages. nltk's third
//! stage, WordNet synonyms, needs the WordNet database, which is not in the sandbox: here that stage
//! matches nothing, as nltk does with an empty WordNet. A pair that only WordNet would align (a
//! synonym that is neither the same word nor the same stem) scores lower here than with nltk and the
//! real WordNet (README, Doubts, gives a measured example).

use std::collections::HashMap;

use crate::porter;

/// One matching stage (nltk's `_match_enums`): from the last hypothesis word back, each word takes
/// the last still unmatched reference word equal to it. Returns (hypothesis, reference) positions,
/// and removes the matched words from both lists.
fn match_stage(hyp: &mut Vec<(usize, String)>, refs: &mut Vec<(usize, String)>, out: &mut Vec<(usize, usize)>) {
    let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, (_, w)) in refs.iter().enumerate() {
        positions.entry(w.as_str()).or_default().push(j);
    }
    let mut hyp_used = vec![false; hyp.len()];
    let mut ref_used = vec![false; refs.len()];
    for i in (0..hyp.len()).rev() {
        if let Some(j) = positions.get_mut(hyp[i].1.as_str()).and_then(Vec::pop) {
            hyp_used[i] = true;
            ref_used[j] = true;
            out.push((hyp[i].0, refs[j].0));
        }
    }
    let mut i = 0;
    hyp.retain(|_| {
        i += 1;
        !hyp_used[i - 1]
    });
    let mut j = 0;
    refs.retain(|_| {
        j += 1;
        !ref_used[j - 1]
    });
}

/// The METEOR score in [0, 1].
pub fn meteor(reference: &[&str], hypothesis: &[&str]) -> f64 {
    let mut hyp: Vec<(usize, String)> = hypothesis.iter().map(|w| w.to_lowercase()).enumerate().collect();
    let mut refs: Vec<(usize, String)> = reference.iter().map(|w| w.to_lowercase()).enumerate().collect();
    let (translation_length, reference_length) = (hyp.len(), refs.len());
    let mut matches = Vec::new();
    match_stage(&mut hyp, &mut refs, &mut matches);
    let mut hyp: Vec<(usize, String)> = hyp.into_iter().map(|(i, w)| (i, porter::stem(&w))).collect();
    let mut refs: Vec<(usize, String)> = refs.into_iter().map(|(i, w)| (i, porter::stem(&w))).collect();
    match_stage(&mut hyp, &mut refs, &mut matches);
    // (The WordNet stage would run here; with no synonyms it matches nothing new.)
    matches.sort_by_key(|m| m.0);
    let count = matches.len();
    if count == 0 || translation_length == 0 || reference_length == 0 {
        return 0.0;
    }
    let precision = count as f64 / translation_length as f64;
    let recall = count as f64 / reference_length as f64;
    let fmean = (precision * recall) / (0.9 * precision + (1.0 - 0.9) * recall);
    let mut chunks = 1usize;
    for w in matches.windows(2) {
        if !(w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 + 1) {
            chunks += 1;
        }
    }
    let frag = chunks as f64 / count as f64;
    let penalty = 0.5 * frag.powi(3);
    (1.0 - penalty) * fmean
}
