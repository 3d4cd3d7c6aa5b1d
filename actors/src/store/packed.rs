//! Packed records: every record's JSON (objects and event snapshots) kept in Redis compressed
//! with zstd against a dictionary trained on sample events, about a seventh of its size.
//!
//! Records are most of what a payment leaves in Redis (five event snapshots of about 1.6 KB,
//! the payment intent twice, a charge and a receipt invoice: 13 of its 18 KB in the AOF), and
//! every byte written is paid for three times: copied into the AOF, rewritten by every AOF
//! rewrite (whose child competes with the daemon for the cores: the p99 at 1,000 payments/s
//! was 31 ms with rewrites and 10 ms without), and held in memory. The same fields repeat in
//! every record, so a zstd dictionary trained on sample events (`event_dictionary.zdict`,
//! level 1) shrinks a snapshot to under 200 bytes for a few microseconds of the daemon's time. A trained dictionary, unlike raw sample text, carries
//! its own entropy tables: compressing then builds none per event, which measured about three
//! times faster (826 against 310 MB/s, `zstd -b1`) and a tenth smaller.
//!
//! The dictionary was made with `zstd --train --maxdict=32768 --dictID=1` from 598 events of
//! twenty types (payments, captures, cancellations, declines, refunds, customers, cards,
//! subscriptions with and without trials, checkout) written by a development daemon; on 187
//! other events it gives 9.6 times smaller (`zstd -b1 -D`).
//!
//! A packed value is [`MARK`] followed by one or more zstd frames; the frames decode, one after
//! the other, to the JSON. Frames make room for an invoice number the commit script only
//! learns inside Redis (see `Tx::number`): the daemon compresses the JSON with the number's
//! placeholder in it, after a skippable frame (which zstd passes over) saying how long the
//! JSON is and what the placeholder is ([`pack_templated`]); the script appends the number
//! as a raw (uncompressed) frame, built exactly as [`raw_frame`] builds it here, and a reader
//! puts it in the placeholder's place. (Values written before this kept the pieces around the
//! placeholder as separate frames with the number between them; they still read as they did.)
//!
//! Every reader of a record's `json` goes through [`text`], so a value written before packing
//! existed (plain JSON, which never starts with [`MARK`]) reads as it always did. An operator
//! reads a record with `calmony-payd inspect <id>` or `record <key>` (or `redis-cli` piped
//! through `zstd -d -D event_dictionary.zdict`); the fields kept beside the JSON (`v`,
//! `internal`, `xref`, and the plain fields of [`super::plain`] that `redis-cli` answers
//! questions with) stay plain.
//!
//! The dictionary must never change: every packed record needs it to be read. A better one
//! would come with a new mark byte, and both kept.

use std::cell::RefCell;
use std::sync::LazyLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// First byte of a packed value: zstd frames against `event_dictionary.zdict`. JSON never
/// starts with it.
pub const MARK: u8 = 0x01;
const LEVEL: i32 = 1;
/// Largest JSON a packed value may decode to (an event is a few KB; this only bounds a
/// corrupt value's claim).
const MAX_TEXT: usize = 16 << 20;

static DICTIONARY: &[u8] = include_bytes!("event_dictionary.zdict");
static ENCODER: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARY, LEVEL));
static DECODER: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICTIONARY));

thread_local! {
    // A zstd context costs tens of microseconds to set up; each worker thread keeps one.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("packed value does not decode: {0}")]
    Zstd(#[from] std::io::Error),
    #[error("value is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// `json` as one frame, without the mark (see [`pack`]).
pub fn frame(json: &str) -> Vec<u8> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressed = match slot.as_mut() {
            Some(c) => c.compress(json.as_bytes()),
            None => Compressor::with_prepared_dictionary(&ENCODER).and_then(|mut c| {
                let out = c.compress(json.as_bytes());
                *slot = Some(c);
                out
            }),
        };
        // Compressing into a growable buffer has no failure mode short of running out of
        // memory; should zstd ever refuse, the text travels as a raw frame, still decodable.
        compressed.unwrap_or_else(|_| raw_frame(json.as_bytes()))
    })
}

/// `json` packed: [`MARK`] and one frame.
pub fn pack(json: &str) -> Vec<u8> {
    let mut out = vec![MARK];
    out.extend(frame(json));
    out
}

/// The magic number of the skippable frame that describes a templated value (any of
/// `0x184D2A50..=0x184D2A5F` is skippable; this one is ours).
const TEMPLATE_MAGIC: u32 = 0x184D_2A5C;

/// `json`, which holds `placeholder`, packed for the commit script to append the number that
/// replaces it (see the module documentation): one compression, whatever the number.
pub fn pack_templated(json: &str, placeholder: &str) -> Vec<u8> {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = vec![MARK];
    out.extend(TEMPLATE_MAGIC.to_le_bytes());
    out.extend(len(4 + placeholder.len()));
    out.extend(len(json.len()));
    out.extend(placeholder.as_bytes());
    out.extend(frame(json));
    out
}

/// A templated value's description, read from its leading skippable frame: the JSON's
/// length and the placeholder the number after it replaces.
fn template_of(frames: &[u8]) -> Option<(usize, &[u8])> {
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = frames.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(bytes))
    };
    if word(0)? != TEMPLATE_MAGIC {
        return None;
    }
    let size = word(4)? as usize;
    let json_len = word(8)? as usize;
    let placeholder = frames.get(12..8 + size)?;
    Some((json_len, placeholder))
}

/// A zstd frame holding `content` uncompressed: magic number, a single-segment frame header
/// with the content size and no window, checksum or dictionary id, then raw blocks of at most
/// 128 KiB. Up to 255 bytes the size takes one byte, exactly as the commit script builds the
/// frame around an invoice number (`rawframe` in `scripts::COMMIT`); longer content (only
/// ever the fallback in [`frame`]) a four-byte size.
pub fn raw_frame(content: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 128 << 10;
    let mut out = vec![0x28, 0xB5, 0x2F, 0xFD];
    match u8::try_from(content.len()) {
        Ok(n) => out.extend([0x20, n]),
        Err(_) => {
            out.push(0xA0);
            let n = u32::try_from(content.len()).unwrap_or(u32::MAX);
            out.extend(n.to_le_bytes());
        }
    }
    let mut blocks = content.chunks(MAX_BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend([1, 0, 0]); // one empty last block
    }
    while let Some(block) = blocks.next() {
        let header = (block.len() << 3) | usize::from(blocks.peek().is_none());
        out.extend([header as u8, (header >> 8) as u8, (header >> 16) as u8]);
        out.extend(block);
    }
    out
}

/// A stored `json` value as text: packed values decoded, plain JSON as it is.
pub fn text(value: Vec<u8>) -> Result<String, PackError> {
    if value.first() != Some(&MARK) {
        return Ok(String::from_utf8(value)?);
    }
    let frames = &value[1..];
    let bytes = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some(d) => d.decompress(frames, MAX_TEXT),
            None => Decompressor::with_prepared_dictionary(&DECODER).and_then(|mut d| {
                let out = d.decompress(frames, MAX_TEXT);
                *slot = Some(d);
                out
            }),
        }
    })?;
    let Some((json_len, placeholder)) = template_of(frames) else {
        return Ok(String::from_utf8(bytes)?);
    };
    // The JSON, then the number the script appended after it.
    let (json, number) = bytes.split_at(json_len.min(bytes.len()));
    let (json, number) = (std::str::from_utf8(json), std::str::from_utf8(number));
    match (json, number, std::str::from_utf8(placeholder)) {
        (Ok(json), Ok(number), Ok(placeholder)) if !placeholder.is_empty() => {
            Ok(json.replace(placeholder, number))
        }
        _ => Ok(String::from_utf8(bytes)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"evt_01M7ZT45D8NNKFZSG1WFXH03RQ","object":"event","api_version":"2025-03-31.basil","created":1795290174,"data":{"object":{"id":"pi_01M7ZT45D6MENE5DC8ARFJMM1H","object":"payment_intent","amount":2500,"status":"succeeded"}},"livemode":false,"pending_webhooks":0,"request":{"id":null,"idempotency_key":null},"type":"payment_intent.succeeded"}"#;

    #[test]
    fn packed_events_read_back_and_are_smaller() {
        let packed = pack(EVENT);
        assert_eq!(packed[0], MARK);
        assert!(packed.len() * 2 < EVENT.len(), "{} bytes", packed.len());
        assert_eq!(text(packed).expect("decodes"), EVENT);
    }

    #[test]
    fn plain_json_reads_as_it_is() {
        assert_eq!(text(EVENT.as_bytes().to_vec()).expect("plain"), EVENT);
        assert!(text(vec![0xff, 0xfe]).is_err());
    }

    /// What the commit script stores for a value holding an invoice number: the pieces
    /// around the placeholder as compressed frames, the number between them as a raw frame.
    /// The form templated values had before `pack_templated`: still read.
    #[test]
    fn a_number_between_compressed_pieces_reads_in_place() {
        let (before, after) = EVENT.split_once("payment_intent.succeeded").expect("cut");
        let mut stored = vec![MARK];
        stored.extend(frame(before));
        stored.extend(raw_frame(b"ABCD1234-000042"));
        stored.extend(frame(after));
        let expected = format!("{before}ABCD1234-000042{after}");
        assert_eq!(text(stored).expect("decodes"), expected);
        // An empty piece (the placeholder at either end) is an empty frame.
        let mut edge = vec![MARK];
        edge.extend(frame(""));
        edge.extend(raw_frame(b"42"));
        assert_eq!(text(edge).expect("decodes"), "42");
    }

    #[test]
    fn a_templated_value_reads_with_the_appended_number_in_place() {
        let json = EVENT.replace("payment_intent.succeeded", "#NUM#");
        let mut stored = pack_templated(&json, "#NUM#");
        assert_eq!(stored[0], MARK);
        stored.extend(raw_frame(b"CP-000042"));
        let expected = EVENT.replace("payment_intent.succeeded", "CP-000042");
        assert_eq!(text(stored.clone()).expect("decodes"), expected);
        // Frames only, after the mark: what `zstd -d` shows an operator is the JSON with its
        // placeholder and the number after it.
        let mut plain = Vec::new();
        let read = zstd::stream::read::Decoder::with_dictionary(&stored[1..], DICTIONARY)
            .and_then(|mut d| std::io::Read::read_to_end(&mut d, &mut plain));
        assert!(read.is_ok(), "{read:?}");
        assert_eq!(
            String::from_utf8(plain).expect("text"),
            format!("{json}CP-000042")
        );
    }

    /// The fallback when compression fails: a raw frame of any length still decodes whole.
    #[test]
    fn raw_frames_of_any_length_decode_whole() {
        for len in [0, 1, 255, 256, 70_000, 300_000] {
            let content: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let mut stored = vec![MARK];
            stored.extend(raw_frame(content.as_bytes()));
            assert_eq!(text(stored).expect("decodes"), content, "{len} bytes");
        }
    }

    #[test]
    fn a_corrupt_packed_value_is_an_error_not_a_panic() {
        let mut packed = pack(EVENT);
        packed.truncate(packed.len() / 2);
        assert!(text(packed).is_err());
        assert!(text(vec![MARK, 1, 2, 3]).is_err());
    }
}
