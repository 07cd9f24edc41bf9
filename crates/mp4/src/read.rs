//! A minimal box reader (ISO/IEC 14496-12 §4.2): enough to walk a file's top-level boxes, or a
//! container's children, for tests, fuzzing and the recorder's crash recovery check.

use std::ops::Range;

use crate::Error;

/// Iterates the boxes laid end to end in `data`: each box's type and its byte range (header
/// included) in `data`. A box whose size is 0 runs to the end of `data` (§4.2); a size of 1 is
/// followed by a 64-bit size. A header that ends early or a size that is smaller than the header
/// or runs past the end yields one `Err` (its offset is where that box starts) and ends the
/// iteration. Never panics.
///
/// To read a container's children, pass its payload: `boxes(&data[range.start + 8..range.end])`
/// (offsets are then relative to that slice; see [`payload`]).
pub fn boxes(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], Range<usize>), Error>> + '_ {
    Boxes {
        data,
        pos: 0,
        done: false,
    }
}

/// The payload of the box at `range` of `data`: the range after its header (8 bytes, or 16
/// for a 64-bit size). `None` if `range` is not a whole box of `data`.
pub fn payload(data: &[u8], range: &Range<usize>) -> Option<Range<usize>> {
    let b = data.get(range.clone())?;
    let size = u32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
    let header = if size == 1 { 16 } else { 8 };
    (b.len() >= header).then(|| range.start + header..range.end)
}

/// Finds the first box along `path` (`[b"moov", b"trak", b"mdia"]`), descending from the top
/// level of `data`: its byte range in `data`. Malformed boxes end the search.
pub fn find(data: &[u8], path: &[[u8; 4]]) -> Option<Range<usize>> {
    let mut within = 0..data.len();
    for (depth, fourcc) in path.iter().enumerate() {
        let inner = if depth == 0 {
            within.clone()
        } else {
            payload(data, &within)?
        };
        let slice = data.get(inner.clone())?;
        let (_, range) = boxes(slice)
            .map_while(Result::ok)
            .find(|(t, _)| t == fourcc)?;
        within = inner.start + range.start..inner.start + range.end;
    }
    Some(within)
}

/// The iterator behind [`boxes`].
struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl Iterator for Boxes<'_> {
    type Item = Result<([u8; 4], Range<usize>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let item = self.parse();
        match &item {
            Ok((_, range)) => self.pos = range.end,
            Err(_) => self.done = true,
        }
        Some(item)
    }
}

impl Boxes<'_> {
    fn parse(&self) -> Result<([u8; 4], Range<usize>), Error> {
        let start = self.pos;
        let rest = self.data.get(start..).unwrap_or_default();
        let header = rest
            .get(0..8)
            .ok_or(Error::malformed(start, "box header"))?;
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let fourcc = [header[4], header[5], header[6], header[7]];
        let (size, header_len) = match size {
            0 => (rest.len() as u64, 8),
            1 => {
                let large = rest
                    .get(8..16)
                    .ok_or(Error::malformed(start, "box largesize"))?;
                let mut b = [0; 8];
                b.copy_from_slice(large);
                (u64::from_be_bytes(b), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header_len || size > rest.len() as u64 {
            return Err(Error::malformed(start, "box size"));
        }
        Ok((fourcc, start..start + size as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_boxes_end_to_end() {
        let mut data = vec![0, 0, 0, 8, b'f', b'r', b'e', b'e'];
        data.extend([
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 18, 1, 2,
        ]);
        data.extend([0, 0, 0, 0, b's', b'k', b'i', b'p', 9]);
        assert_eq!(
            boxes(&data).collect::<Vec<_>>(),
            vec![
                Ok((*b"free", 0..8)),
                Ok((*b"mdat", 8..26)),
                Ok((*b"skip", 26..35)),
            ]
        );
    }

    #[test]
    fn malformed_sizes_end_with_one_error() {
        let cases: [&[u8]; 5] = [
            &[0, 0, 0, 9, b'f', b'r', b'e', b'e'],
            &[0, 0, 0, 7, b'f', b'r', b'e', b'e'],
            &[0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0],
            &[0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 8],
            &[0, 0, 0],
        ];
        for data in cases {
            let got = boxes(data).collect::<Vec<_>>();
            assert_eq!(got.len(), 1, "{data:?}");
            assert!(got[0].is_err(), "{data:?}");
        }
        let data = [
            0, 0, 0, 8, b'f', b'r', b'e', b'e', 0, 0, 1, 0, b'm', b'o', b'o', b'v',
        ];
        let got = boxes(&data).collect::<Vec<_>>();
        assert_eq!(got[0], Ok((*b"free", 0..8)));
        assert_eq!(got[1], Err(Error::malformed(8, "box size")));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn finds_nested_boxes() {
        let mut data = vec![0, 0, 0, 24, b'm', b'o', b'o', b'v'];
        data.extend([0, 0, 0, 8, b'f', b'r', b'e', b'e']);
        data.extend([0, 0, 0, 8, b't', b'r', b'a', b'k']);
        assert_eq!(find(&data, &[*b"moov", *b"trak"]), Some(16..24));
        assert_eq!(find(&data, &[*b"moov", *b"mvhd"]), None);
        assert_eq!(payload(&data, &(0..24)), Some(8..24));
    }
}
