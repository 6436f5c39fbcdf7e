//! Size-prefixed Kafka frames: a 4-byte big-endian length, then the request.
//!
//! The decoder never trusts the length for allocation: it rejects negative or
//! oversized prefixes, and grows its buffer only as bytes actually arrive.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// How much buffer the decoder asks for ahead of the bytes received.
const READ_AHEAD: usize = 64 * 1024;

/// Why a connection's byte stream cannot be split into frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Splits a byte stream into request frames of at most `max` bytes.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max: usize,
}

impl FrameDecoder {
    /// A decoder accepting frames of up to `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder { max }
    }
}

impl Decoder for FrameDecoder {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes(prefix.try_into().expect("slice of length 4"));
        let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
        if size > self.max {
            return Err(FrameError::TooLarge {
                size,
                max: self.max,
            });
        }
        let missing = (4 + size).saturating_sub(src.len());
        if missing > 0 {
            src.reserve(missing.min(READ_AHEAD));
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_waits_for_partial_ones() {
        let mut decoder = FrameDecoder::new(100);
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 2, 9][..]);
        assert_eq!(&decoder.decode(&mut buf).unwrap().unwrap()[..], &[1, 2, 3]);
        assert!(decoder.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[8]);
        assert_eq!(&decoder.decode(&mut buf).unwrap().unwrap()[..], &[9, 8]);
    }

    #[test]
    fn rejects_bad_sizes_without_allocating_them() {
        let mut decoder = FrameDecoder::new(100 * 1024 * 1024);
        let mut huge = BytesMut::from(&0x7fff_ffffi32.to_be_bytes()[..]);
        assert!(matches!(
            decoder.decode(&mut huge),
            Err(FrameError::TooLarge { .. })
        ));
        let mut negative = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert!(matches!(
            decoder.decode(&mut negative),
            Err(FrameError::Negative(-5))
        ));
        let mut big_but_allowed = BytesMut::from(&(90 * 1024 * 1024i32).to_be_bytes()[..]);
        assert!(decoder.decode(&mut big_but_allowed).unwrap().is_none());
        assert!(big_but_allowed.capacity() <= 4 + READ_AHEAD + 64);
    }
}
