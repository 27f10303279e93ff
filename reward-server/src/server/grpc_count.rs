//! Counts the rollouts of each gRPC `ScoreRequest` as its bytes arrive, before prost decodes it.
//!
//! prost turns every `rollouts` entry into a `Rollout` of five `String`s and a `Vec`: about
//! 150 bytes of memory for an entry that can be two bytes on the wire (an empty message), so a
//! message within `--max-body-bytes` could still ask for some 75 times its size. The HTTP doors
//! count records before decoding them (`input::Count`); this is the same promise for gRPC. The
//! request body of `Score` and `ScoreStream` is passed through a scanner that reads the gRPC
//! frames and, in each uncompressed message, the top-level protobuf fields, counting field 2
//! (`rollouts`). When a message has more than `--max-rollouts-per-request` entries the body
//! fails with `INVALID_ARGUMENT` "too many rollouts" at that point: the rest of the message is not
//! read, and nothing of it was decoded.
//!
//! The scanner keeps a few bytes of state and never buffers: tonic buffers the frame for prost
//! as it does without it. It does not validate the protobuf (prost does), but it reads every
//! field prost accepts, groups (wire types 3 and 4, which prost skips as unknown fields)
//! included, so a message prost decodes is counted exactly (the `grpc` fuzz target checks it).
//! On bytes that are not fields it stops counting until the next frame: prost refuses those
//! where they stand, before it decodes a rollout after them. Compressed frames are passed
//! uncounted (the server does not accept compressed requests, so tonic refuses them).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use super::error::ScoreError;

/// The methods whose request messages carry rollouts in field 2: `ScoreRequest`s, and
/// `ValidateRequest`'s samples.
const COUNTED_PATHS: [&str; 3] =
    ["/reward.v1.RewardService/Score", "/reward.v1.RewardService/ScoreStream", "/reward.v1.RewardService/Validate"];
/// `ScoreRequest.rollouts` (and `ValidateRequest.rollouts`).
const ROLLOUTS_FIELD: u64 = 2;
/// Protobuf's length-delimited wire type.
const LEN: u64 = 2;
/// Deepest nesting of groups followed: prost's own recursion limit (100).
const MAX_GROUP_DEPTH: u32 = 100;

/// Wraps a gRPC service: requests to the scoring methods get their rollouts counted.
#[derive(Clone)]
pub struct CountRollouts<S> {
    inner: S,
    max: usize,
}

impl<S> CountRollouts<S> {
    /// Counts against `max` rollouts per message.
    pub fn new(inner: S, max: usize) -> Self {
        CountRollouts { inner, max }
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for CountRollouts<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<::http::Request<tonic::body::Body>> for CountRollouts<S>
where
    S: tower::Service<::http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ::http::Request<tonic::body::Body>) -> Self::Future {
        if !COUNTED_PATHS.contains(&request.uri().path()) {
            return self.inner.call(request);
        }
        let max = self.max;
        self.inner.call(request.map(|body| tonic::body::Body::new(Counted { inner: body, scan: Scan::new(max) })))
    }
}

/// A request body whose gRPC messages are counted as they pass.
struct Counted<B> {
    inner: B,
    scan: Scan,
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(e) = this.scan.feed(data)
                {
                    return Poll::Ready(Some(Err(Box::new(tonic::Status::from(e)))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            other => other.map(|f| f.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Where the scanner is in the stream of gRPC frames.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    /// Reading the 5-byte frame prefix (compressed flag, big-endian length); `got` bytes so far.
    Prefix { got: usize },
    /// Inside a message, reading a field's tag, a varint value, or a length (all varints).
    Varint { what: Varint },
    /// Inside a message, skipping `n` bytes of a field's value.
    Skip { n: u64 },
    /// Passing the rest of the frame uncounted (compressed, or not readable as fields).
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Varint {
    Tag,
    Value,
    Length,
}

/// The rollouts of the last message of a gRPC request body, counted as the server counts them
/// (for the `grpc` fuzz target): the count, or the refusal past `max`.
#[doc(hidden)]
pub fn count_rollouts(max: usize, body: &[u8]) -> Result<usize, ScoreError> {
    let mut scan = Scan::new(max);
    scan.feed(body)?;
    Ok(scan.count)
}

/// The scanner's state: a handful of integers, whatever the message size.
struct Scan {
    max: usize,
    at: At,
    prefix: [u8; 5],
    /// Bytes of the current frame's message not yet seen.
    left: u64,
    /// The varint being read, and its shift.
    varint: u64,
    shift: u32,
    /// Rollouts counted in the current message.
    count: usize,
    /// Groups open at this point of the message (fields inside them are not the message's).
    groups: u32,
}

impl Scan {
    fn new(max: usize) -> Self {
        Scan { max, at: At::Prefix { got: 0 }, prefix: [0; 5], left: 0, varint: 0, shift: 0, count: 0, groups: 0 }
    }

    /// Scans the next bytes of the body; fails once a message holds more than `max` rollouts.
    fn feed(&mut self, mut data: &[u8]) -> Result<(), ScoreError> {
        while !data.is_empty() {
            if let At::Prefix { got } = self.at {
                let take = (5 - got).min(data.len());
                self.prefix[got..got + take].copy_from_slice(&data[..take]);
                data = &data[take..];
                if got + take < 5 {
                    self.at = At::Prefix { got: got + take };
                    continue;
                }
                self.left = u64::from(u32::from_be_bytes(self.prefix[1..5].try_into().expect("4 bytes")));
                self.count = 0;
                self.groups = 0;
                self.at = if self.prefix[0] != 0 { At::Opaque } else { self.field_start() };
                self.end_of_message_check();
                continue;
            }
            // Inside a message: never read past its end.
            let here = data.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let (mine, rest) = data.split_at(here);
            self.message_bytes(mine)?;
            self.left -= here as u64;
            data = rest;
            self.end_of_message_check();
        }
        Ok(())
    }

    /// The state at the start of a field (or the next frame, if the message is empty).
    fn field_start(&mut self) -> At {
        self.varint = 0;
        self.shift = 0;
        At::Varint { what: Varint::Tag }
    }

    /// At the end of a message, waits for the next frame's prefix.
    fn end_of_message_check(&mut self) {
        if self.left == 0 && !matches!(self.at, At::Prefix { .. }) {
            self.at = At::Prefix { got: 0 };
        }
    }

    /// Scans bytes that all belong to the current message.
    fn message_bytes(&mut self, data: &[u8]) -> Result<(), ScoreError> {
        let mut i = 0;
        while i < data.len() {
            match self.at {
                At::Prefix { .. } => unreachable!("message bytes are scanned only inside a message"),
                At::Opaque => return Ok(()),
                At::Skip { n } => {
                    let take = n.min((data.len() - i) as u64);
                    i += take as usize;
                    self.at = if take == n { self.field_start() } else { At::Skip { n: n - take } };
                }
                At::Varint { what } => {
                    let byte = data[i];
                    i += 1;
                    if self.shift >= 64 {
                        self.at = At::Opaque;
                        continue;
                    }
                    self.varint |= u64::from(byte & 0x7f) << self.shift;
                    self.shift += 7;
                    if byte & 0x80 != 0 {
                        continue;
                    }
                    let value = self.varint;
                    self.at = match what {
                        Varint::Tag => self.after_tag(value)?,
                        Varint::Value => self.field_start(),
                        Varint::Length => {
                            if value == 0 {
                                self.field_start()
                            } else {
                                At::Skip { n: value }
                            }
                        }
                    };
                    if matches!(what, Varint::Tag) {
                        self.varint = 0;
                        self.shift = 0;
                    }
                }
            }
        }
        Ok(())
    }

    /// What follows a field's tag; counts a rollout.
    fn after_tag(&mut self, tag: u64) -> Result<At, ScoreError> {
        let (field, wire) = (tag >> 3, tag & 7);
        if field == ROLLOUTS_FIELD && wire == LEN && self.groups == 0 {
            self.count += 1;
            if self.count > self.max {
                return Err(ScoreError::TooManyRollouts { got: self.count, max: self.max });
            }
        }
        Ok(match wire {
            0 => At::Varint { what: Varint::Value },
            1 => At::Skip { n: 8 },
            2 => At::Varint { what: Varint::Length },
            5 => At::Skip { n: 4 },
            3 if self.groups < MAX_GROUP_DEPTH => {
                self.groups += 1;
                self.field_start()
            }
            4 if self.groups > 0 => {
                self.groups -= 1;
                self.field_start()
            }
            // Not a field prost reads (wire types 6 and 7, an unopened group's end, groups past
            // prost's depth): prost refuses the message here; stop counting it.
            _ => At::Opaque,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use reward_proto::v1::{Rollout, ScoreRequest};

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    fn request(n: usize) -> Vec<u8> {
        let rollout =
            |i: usize| Rollout { id: format!("r{i}"), completion: "x".repeat(i % 300), reference_json: "1".into(), ..Rollout::default() };
        ScoreRequest { reward: "math".into(), rollouts: (0..n).map(rollout).collect() }.encode_to_vec()
    }

    /// Feeds `bytes` in pieces of `step` bytes; the count of the last message, or the error.
    fn scan(max: usize, bytes: &[u8], step: usize) -> Result<usize, ScoreError> {
        let mut s = Scan::new(max);
        for piece in bytes.chunks(step.max(1)) {
            s.feed(piece)?;
        }
        Ok(s.count)
    }

    #[test]
    fn counts_the_rollouts_of_a_message_split_anywhere() {
        let body = frame(&request(40));
        for step in [1, 2, 3, 5, 7, 64, 1000, body.len()] {
            assert_eq!(scan(40, &body, step).unwrap(), 40, "step {step}");
        }
    }

    #[test]
    fn refuses_the_first_rollout_past_the_cap_in_any_split() {
        let body = frame(&request(41));
        for step in [1, 3, 64, body.len()] {
            match scan(40, &body, step) {
                Err(ScoreError::TooManyRollouts { got: 41, max: 40 }) => {}
                other => panic!("step {step}: {other:?}"),
            }
        }
    }

    #[test]
    fn empty_rollouts_two_bytes_each_are_counted() {
        // The amplification case: `rollouts: [{}, {}, ...]` is 0x12 0x00 per entry.
        let message: Vec<u8> = std::iter::repeat_n([0x12u8, 0x00], 5000).flatten().collect();
        assert!(matches!(scan(4096, &frame(&message), 4096), Err(ScoreError::TooManyRollouts { got: 4097, .. })));
        assert_eq!(ScoreRequest::decode(message.as_slice()).unwrap().rollouts.len(), 5000, "prost reads them as rollouts");
    }

    #[test]
    fn each_stream_message_is_counted_on_its_own() {
        let mut body = frame(&request(30));
        body.extend(frame(&request(30)));
        body.extend(frame(&[]));
        body.extend(frame(&request(30)));
        assert_eq!(scan(30, &body, 17).unwrap(), 30);
        body.extend(frame(&request(31)));
        assert!(scan(30, &body, 17).is_err());
    }

    #[test]
    fn a_rollouts_field_nested_inside_a_rollout_is_not_counted() {
        // Field 2 of a Rollout is `messages`: inside a rollout's bytes, it is skipped whole.
        let message = ScoreRequest {
            reward: "r".into(),
            rollouts: vec![Rollout {
                messages: (0..100).map(|_| reward_proto::v1::Message { role: "user".into(), content: "hi".into() }).collect(),
                ..Rollout::default()
            }],
        }
        .encode_to_vec();
        assert_eq!(scan(1, &frame(&message), 5).unwrap(), 1);
    }

    #[test]
    fn rollouts_after_an_unknown_group_are_counted_and_those_inside_it_are_not() {
        // Field 9 as a group holding a field-2 entry, then three real rollouts: prost skips the
        // group as an unknown field and decodes three rollouts.
        let mut message = vec![(9 << 3) | 3, 0x12, 0x00, (9 << 3) | 4];
        message.extend(request(3));
        assert_eq!(ScoreRequest::decode(message.as_slice()).unwrap().rollouts.len(), 3);
        assert_eq!(scan(10, &frame(&message), 1).unwrap(), 3);
        // So a group in front does not hide a flood.
        let mut flood = vec![(9 << 3) | 3, (9 << 3) | 4];
        flood.extend(std::iter::repeat_n([0x12u8, 0x00], 100).flatten());
        assert!(scan(10, &frame(&flood), 7).is_err());
    }

    #[test]
    fn garbage_and_compressed_frames_pass_uncounted_and_the_next_frame_is_read() {
        let mut body = frame(&[0x0f, 0xff, 0xff, 0xff]); // wire type 7: not protobuf
        let mut compressed = frame(&request(50));
        compressed[0] = 1;
        body.extend(compressed);
        body.extend(frame(&request(3)));
        assert_eq!(scan(10, &body, 9).unwrap(), 3);
        // A length that runs past the message ends at the frame's end.
        let mut body = frame(&[0x12, 0x7f, 1, 2]);
        body.extend(frame(&request(2)));
        assert_eq!(scan(10, &body, 1).unwrap(), 2);
    }
}
