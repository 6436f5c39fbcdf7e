//! Size-prefixed Kafka frames: a 4-byte big-endian length, then the request.
//!
//! The size is checked before anything is allocated for the frame: negative
//! or larger than `socket.request.max.bytes` closes the connection.

/// Why a frame cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The size announced by a frame's 4-byte prefix, if acceptable.
pub fn frame_size(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_against_the_limit() {
        assert_eq!(frame_size(3i32.to_be_bytes(), 100).unwrap(), 3);
        assert_eq!(frame_size(100i32.to_be_bytes(), 100).unwrap(), 100);
        assert!(matches!(
            frame_size(101i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge { size: 101, .. })
        ));
        assert!(matches!(
            frame_size((-5i32).to_be_bytes(), 100),
            Err(FrameError::Negative(-5))
        ));
    }
}
