//! Avro's binary encoding and object container files, as far as Iceberg's
//! manifests and manifest lists need them: records of longs, ints,
//! booleans, strings, bytes, nullable values and arrays, in uncompressed
//! files. Each file carries its writer schema (with Iceberg's field ids),
//! so readers resolve its records by that schema.

use std::collections::HashMap;

/// The first bytes of every Avro object container file.
const MAGIC: &[u8; 4] = b"Obj\x01";

/// Why an Avro file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("not an Avro file")]
    NotAvro,
    #[error("the Avro file ends early")]
    Truncated,
    #[error("Avro codec '{0}' is not read here")]
    Codec(String),
    #[error("bad Avro data: {0}")]
    Bad(&'static str),
}

/// Appends values in Avro's binary encoding.
#[derive(Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// A zig-zag variable-length long (also ints, counts and lengths).
    pub fn long(&mut self, value: i64) {
        let mut n = ((value << 1) ^ (value >> 63)) as u64;
        while n >= 0x80 {
            self.bytes.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.bytes.push(n as u8);
    }

    pub fn int(&mut self, value: i32) {
        self.long(i64::from(value));
    }

    pub fn boolean(&mut self, value: bool) {
        self.bytes.push(u8::from(value));
    }

    pub fn bytes(&mut self, value: &[u8]) {
        self.long(value.len() as i64);
        self.bytes.extend_from_slice(value);
    }

    pub fn string(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    /// A `["null", T]` union: `None`, or the value written by `write`.
    pub fn optional<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.long(0),
            Some(v) => {
                self.long(1);
                write(self, v);
            }
        }
    }

    /// An array: one block of `items` (none when empty), then the end.
    pub fn array<T>(&mut self, items: &[T], mut write: impl FnMut(&mut Self, &T)) {
        if !items.is_empty() {
            self.long(items.len() as i64);
            for item in items {
                write(self, item);
            }
        }
        self.long(0);
    }
}

/// Reads values in Avro's binary encoding.
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn long(&mut self) -> Result<i64, AvroError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first().ok_or(AvroError::Truncated)?;
            self.bytes = rest;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        Err(AvroError::Bad("a long longer than 10 bytes"))
    }

    pub fn int(&mut self) -> Result<i32, AvroError> {
        i32::try_from(self.long()?).map_err(|_| AvroError::Bad("an int out of range"))
    }

    pub fn boolean(&mut self) -> Result<bool, AvroError> {
        Ok(self.take(1)?[0] != 0)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], AvroError> {
        let len = usize::try_from(self.long()?).map_err(|_| AvroError::Bad("a negative length"))?;
        self.take(len)
    }

    pub fn string(&mut self) -> Result<String, AvroError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| AvroError::Bad("a string not UTF-8"))
    }

    /// A `["null", T]` union.
    pub fn optional<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, AvroError>,
    ) -> Result<Option<T>, AvroError> {
        match self.long()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(AvroError::Bad(
                "a union branch other than null or the value",
            )),
        }
    }

    /// An array (or a map's blocks), each item read by `read`.
    pub fn array<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, AvroError>,
    ) -> Result<Vec<T>, AvroError> {
        let mut items = Vec::new();
        loop {
            let mut count = self.long()?;
            if count == 0 {
                return Ok(items);
            }
            if count < 0 {
                // A block with its size in bytes, which is not needed here.
                count = -count;
                self.long()?;
            }
            for _ in 0..count {
                items.push(read(self)?);
            }
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], AvroError> {
        if self.bytes.len() < len {
            return Err(AvroError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }
}

/// An object container file of `count` records encoded in `records`, with
/// the writer `schema` and further `metadata` in its header.
pub fn write_file(
    schema: &serde_json::Value,
    metadata: &[(&str, String)],
    count: usize,
    records: Encoder,
) -> Vec<u8> {
    let sync = *uuid::Uuid::new_v4().as_bytes();
    let mut file = Encoder::default();
    file.bytes.extend_from_slice(MAGIC);
    let mut header: Vec<(&str, Vec<u8>)> = vec![
        ("avro.schema", schema.to_string().into_bytes()),
        ("avro.codec", b"null".to_vec()),
    ];
    header.extend(metadata.iter().map(|(k, v)| (*k, v.clone().into_bytes())));
    file.array(&header, |file, (key, value)| {
        file.string(key);
        file.bytes(value);
    });
    file.bytes.extend_from_slice(&sync);
    if count > 0 {
        file.long(count as i64);
        file.bytes(&records.bytes);
        file.bytes.extend_from_slice(&sync);
    }
    file.bytes
}

/// An object container file's header metadata.
pub type Metadata = HashMap<String, Vec<u8>>;

/// An object container file's header metadata, and its records' encoded
/// bytes (every block's, in order).
pub fn read_file(file: &[u8]) -> Result<(Metadata, Vec<u8>), AvroError> {
    let rest = file.strip_prefix(MAGIC).ok_or(AvroError::NotAvro)?;
    let mut decoder = Decoder::new(rest);
    let metadata: Metadata = decoder
        .array(|d| Ok((d.string()?, d.bytes()?.to_vec())))?
        .into_iter()
        .collect();
    match metadata.get("avro.codec").map(Vec::as_slice) {
        None | Some(b"null") => {}
        Some(other) => return Err(AvroError::Codec(String::from_utf8_lossy(other).into())),
    }
    let sync = decoder.take(16)?;
    let mut records = Vec::new();
    while !decoder.is_empty() {
        decoder.long()?;
        records.extend_from_slice(decoder.bytes()?);
        if decoder.take(16)? != sync {
            return Err(AvroError::Bad("a block without the file's sync marker"));
        }
    }
    Ok((metadata, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let mut encoder = Encoder::default();
        for n in [0, -1, 1, 63, -64, 64, i64::MAX, i64::MIN] {
            encoder.long(n);
        }
        encoder.string("héllo");
        encoder.optional(None::<i32>, Encoder::int);
        encoder.optional(Some(7), Encoder::int);
        encoder.array(&[true, false], |e, b| e.boolean(*b));
        let file = write_file(&serde_json::json!("long"), &[("k", "v".into())], 1, encoder);
        let (metadata, records) = read_file(&file).unwrap();
        assert_eq!(metadata["k"], b"v");
        assert_eq!(metadata["avro.schema"], b"\"long\"");
        let mut d = Decoder::new(&records);
        for n in [0, -1, 1, 63, -64, 64, i64::MAX, i64::MIN] {
            assert_eq!(d.long().unwrap(), n);
        }
        assert_eq!(d.string().unwrap(), "héllo");
        assert_eq!(d.optional(Decoder::int).unwrap(), None);
        assert_eq!(d.optional(Decoder::int).unwrap(), Some(7));
        assert_eq!(d.array(Decoder::boolean).unwrap(), vec![true, false]);
        assert!(d.is_empty());
    }

    #[test]
    fn the_encoding_is_avros() {
        // From the Avro specification's examples.
        let mut e = Encoder::default();
        e.long(-64);
        e.long(64);
        e.string("foo");
        assert_eq!(e.bytes, [0x7f, 0x80, 0x01, 0x06, b'f', b'o', b'o']);
        assert!(matches!(read_file(b"PAR1"), Err(AvroError::NotAvro)));
    }
}
