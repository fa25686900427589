//! Capture files: the OTLP trace exports apmtop received, as received, for `--record`,
//! `--replay` and `apmtop replay`.
//!
//! The format (version 1) is a header followed by records; every integer is little-endian:
//!
//! ```text
//! header   16 bytes  "apmtop-capture\n" (15 bytes), then the format version (u8, 1)
//! record   14 bytes  payload length (u32), arrival time (u64, unix nanoseconds),
//!                    transport (u8: 0 gRPC, 1 HTTP/protobuf, 2 HTTP/JSON),
//!                    compression (u8: 0 none, 1 gzip, 2 deflate)
//!          N bytes   the payload
//! ```
//!
//! An HTTP payload is the request body exactly as received, still compressed when it arrived
//! compressed (the compression byte says how). A gRPC payload is the `ExportTraceServiceRequest`
//! message as the gRPC layer hands it over, framing and compression already removed; its
//! compression byte records what the sender used on the wire. Only trace exports that were taken
//! or refused as malformed are recorded: an export refused as "retry later" is sent again by the
//! client and recorded then.
//!
//! Reading is strict and bounded: a payload longer than [`MAX_REQUEST_BYTES`], an unknown
//! transport or compression byte, or a file cut short is an error naming the byte offset where
//! the bad record starts, never a panic or an allocation sized by the file.

pub mod recorder;

use std::io::{self, Read, Write};

use bytes::Bytes;

use crate::model::{Compression, Protocol, Transport};
use crate::receive::MAX_REQUEST_BYTES;

/// The first 15 bytes of every capture file.
pub const MAGIC: &[u8; 15] = b"apmtop-capture\n";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the first record.
pub const HEADER_BYTES: u64 = 16;
/// Bytes before each record's payload.
pub const RECORD_HEADER_BYTES: usize = 14;

/// One recorded export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRecord {
    /// When it arrived, unix nanoseconds.
    pub arrival_unix_ns: u64,
    /// How it arrived.
    pub protocol: Protocol,
    /// The payload (see the module documentation for what it holds per transport).
    pub payload: Bytes,
}

/// A capture file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Reading failed.
    #[error("cannot read the capture at byte offset {offset}: {source}")]
    Io {
        /// Where reading failed.
        offset: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// The file does not start with the capture header.
    #[error("not an apmtop capture file (it does not start with the capture header)")]
    NotACapture,
    /// Written by a newer apmtop.
    #[error("capture format version {0} is not supported (this apmtop reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// The file ends inside a record.
    #[error("capture truncated at byte offset {offset}: {what}")]
    Truncated {
        /// Where the incomplete record starts.
        offset: u64,
        /// What is missing.
        what: String,
    },
    /// A record header holds values no writer produces.
    #[error("capture corrupt at byte offset {offset}: {what}")]
    Corrupt {
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

fn transport_byte(transport: Transport) -> u8 {
    match transport {
        Transport::Grpc => 0,
        Transport::HttpProtobuf => 1,
        Transport::HttpJson => 2,
    }
}

fn compression_byte(compression: Compression) -> u8 {
    match compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Deflate => 2,
    }
}

/// The file header.
pub fn header() -> [u8; HEADER_BYTES as usize] {
    let mut out = [0u8; HEADER_BYTES as usize];
    out[..MAGIC.len()].copy_from_slice(MAGIC);
    out[MAGIC.len()] = VERSION;
    out
}

/// Writes one record. A payload longer than `u32::MAX` cannot happen (the receivers refuse
/// anything over [`MAX_REQUEST_BYTES`]) and is refused here too.
pub fn write_record(out: &mut impl Write, record: &CaptureRecord) -> io::Result<()> {
    let len = u32::try_from(record.payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "export too large to record"))?;
    let mut head = [0u8; RECORD_HEADER_BYTES];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..12].copy_from_slice(&record.arrival_unix_ns.to_le_bytes());
    head[12] = transport_byte(record.protocol.transport);
    head[13] = compression_byte(record.protocol.compression);
    out.write_all(&head)?;
    out.write_all(&record.payload)
}

/// Checks a file header.
pub fn check_header(bytes: &[u8]) -> Result<(), CaptureError> {
    if bytes.len() < HEADER_BYTES as usize || &bytes[..MAGIC.len()] != MAGIC {
        return Err(CaptureError::NotACapture);
    }
    match bytes[MAGIC.len()] {
        VERSION => Ok(()),
        other => Err(CaptureError::UnsupportedVersion(other)),
    }
}

/// Reads records one at a time from a capture.
pub struct CaptureReader<R> {
    input: R,
    /// Bytes consumed so far: the offset of the next record.
    offset: u64,
}

impl<R: Read> CaptureReader<R> {
    /// Reads and checks the header.
    pub fn new(mut input: R) -> Result<Self, CaptureError> {
        let mut head = [0u8; HEADER_BYTES as usize];
        let got = read_full(&mut input, &mut head, 0)?;
        if got < head.len() {
            return Err(CaptureError::NotACapture);
        }
        check_header(&head)?;
        Ok(CaptureReader { input, offset: HEADER_BYTES })
    }

    /// The byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, or `None` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<CaptureRecord>, CaptureError> {
        let start = self.offset;
        let mut head = [0u8; RECORD_HEADER_BYTES];
        let got = read_full(&mut self.input, &mut head, start)?;
        if got == 0 {
            return Ok(None);
        }
        if got < head.len() {
            return Err(CaptureError::Truncated {
                offset: start,
                what: format!("a record header needs {RECORD_HEADER_BYTES} bytes, only {got} left"),
            });
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let mut arrival = [0u8; 8];
        arrival.copy_from_slice(&head[4..12]);
        let corrupt = |what: String| CaptureError::Corrupt { offset: start, what };
        let transport = match head[12] {
            0 => Transport::Grpc,
            1 => Transport::HttpProtobuf,
            2 => Transport::HttpJson,
            other => return Err(corrupt(format!("unknown transport byte {other}"))),
        };
        let compression = match head[13] {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Deflate,
            other => return Err(corrupt(format!("unknown compression byte {other}"))),
        };
        if len > MAX_REQUEST_BYTES {
            return Err(corrupt(format!(
                "record declares {len} bytes, more than the {} MiB export limit",
                MAX_REQUEST_BYTES >> 20
            )));
        }
        // Grown as bytes arrive, so a truncated file never costs its declared length.
        let mut payload = Vec::new();
        #[allow(clippy::disallowed_methods)] // bounded by take(len), len checked above
        let read = (&mut self.input)
            .take(len as u64)
            .read_to_end(&mut payload)
            .map_err(|source| CaptureError::Io { offset: start, source })?;
        if read < len {
            return Err(CaptureError::Truncated {
                offset: start,
                what: format!("the record declares {len} payload bytes, only {read} left"),
            });
        }
        self.offset = start + RECORD_HEADER_BYTES as u64 + len as u64;
        Ok(Some(CaptureRecord {
            arrival_unix_ns: u64::from_le_bytes(arrival),
            protocol: Protocol { transport, compression },
            payload: Bytes::from(payload),
        }))
    }
}

/// Fills `buf` as far as the input goes; returns the bytes read (less than `buf.len()` at EOF).
fn read_full(input: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<usize, CaptureError> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(CaptureError::Io { offset: offset + got as u64, source }),
        }
    }
    Ok(got)
}

/// Reads every record of a capture held in memory (tests and small files).
pub fn read_all(bytes: &[u8]) -> Result<Vec<CaptureRecord>, CaptureError> {
    let mut reader = CaptureReader::new(bytes)?;
    let mut out = Vec::new();
    while let Some(record) = reader.next_record()? {
        out.push(record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(n: u8, transport: Transport, compression: Compression) -> CaptureRecord {
        CaptureRecord {
            arrival_unix_ns: 1_700_000_000_000_000_000 + u64::from(n),
            protocol: Protocol { transport, compression },
            payload: Bytes::from(vec![n; usize::from(n) * 3]),
        }
    }

    fn file(records: &[CaptureRecord]) -> Vec<u8> {
        let mut out = header().to_vec();
        for r in records {
            write_record(&mut out, r).expect("write to a Vec");
        }
        out
    }

    #[test]
    fn records_round_trip_with_protocol_and_arrival_time() {
        let records = vec![
            record(1, Transport::Grpc, Compression::Gzip),
            record(0, Transport::HttpJson, Compression::None),
            record(7, Transport::HttpProtobuf, Compression::Deflate),
        ];
        assert_eq!(read_all(&file(&records)).expect("valid"), records);
    }

    #[test]
    fn truncated_payload_names_the_record_offset() {
        let records =
            vec![record(2, Transport::Grpc, Compression::None), record(5, Transport::Grpc, Compression::None)];
        let mut bytes = file(&records);
        bytes.truncate(bytes.len() - 1);
        let second = HEADER_BYTES + RECORD_HEADER_BYTES as u64 + 6;
        match read_all(&bytes) {
            Err(CaptureError::Truncated { offset, .. }) => assert_eq!(offset, second),
            other => panic!("expected truncation, got {other:?}"),
        }
        bytes.truncate(second as usize + 3);
        let error = read_all(&bytes).expect_err("header cut");
        assert!(error.to_string().contains(&format!("byte offset {second}")), "{error}");
    }

    #[test]
    fn bad_header_bytes_and_huge_lengths_are_corrupt_not_allocated() {
        let mut bytes = file(&[record(1, Transport::Grpc, Compression::None)]);
        bytes[HEADER_BYTES as usize + 12] = 9;
        assert!(matches!(read_all(&bytes), Err(CaptureError::Corrupt { offset: HEADER_BYTES, .. })));
        let mut huge = header().to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 10]);
        assert!(matches!(read_all(&huge), Err(CaptureError::Corrupt { offset: HEADER_BYTES, .. })));
    }

    #[test]
    fn other_files_are_not_captures() {
        assert!(matches!(read_all(b"{\"totals\": {}}"), Err(CaptureError::NotACapture)));
        assert!(matches!(read_all(b""), Err(CaptureError::NotACapture)));
        let mut newer = header().to_vec();
        newer[MAGIC.len()] = 2;
        assert!(matches!(read_all(&newer), Err(CaptureError::UnsupportedVersion(2))));
    }

    proptest! {
        #[test]
        fn any_bytes_after_the_header_read_or_fail_cleanly(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut bytes = header().to_vec();
            bytes.extend_from_slice(&tail);
            let _ = read_all(&bytes);
        }
    }
}
