//! A cursor over fuzz input bytes for targets that need structure (a sequence of operations,
//! a list of packets): each read takes bytes from the front and returns zeros once the input
//! is used up, so every byte string is a valid program and libFuzzer's mutations stay local.

/// Reads integers and slices from the front of the fuzz input.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Whether all bytes have been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte, or 0 at the end.
    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Whether the low bit of the next byte is set.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `len` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (head, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        head
    }

    /// A slice whose length is given by the next byte (0 to 255).
    pub fn short_slice(&mut self) -> &'a [u8] {
        let len = usize::from(self.u8());
        self.bytes(len)
    }

    /// A slice whose length is given by the next two bytes, at most `max`.
    pub fn slice(&mut self, max: usize) -> &'a [u8] {
        let len = usize::from(self.u16()).min(max);
        self.bytes(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_and_pads_with_zeros() {
        let mut input = Input::new(&[1, 2, 3, 4, 5, 2, 9, 8, 7]);
        assert_eq!(input.u8(), 1);
        assert_eq!(input.u16(), 0x0203);
        assert!(!input.bool());
        assert!(input.bool());
        assert_eq!(input.short_slice(), &[9, 8]);
        assert_eq!(input.u32(), 0x0700_0000);
        assert!(input.is_empty());
        assert_eq!(input.bytes(3), &[] as &[u8]);
    }
}
