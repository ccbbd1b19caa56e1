//! Fitting a response into a DynamoDB item (400 KB, attribute names included).
//!
//! A response that would push the record past the limit is compressed with zstd when
//! that makes it fit. If it still does not fit, the record is completed *without* its
//! response, keeping the response's size: the request is never run again (a retry is
//! answered with a clear problem saying the response was too large to keep), nothing
//! is truncated, and the loss is logged at WARN and counted in
//! `idempotency.response_omitted.count`. Both stores apply the same rule.

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Room kept for the record's other attributes (raw route, actor and key are capped
/// at 1 KB each) and a safety margin.
pub const RECORD_OVERHEAD_BYTES: usize = 16 * 1024;
/// The largest response stored as is; larger ones are compressed.
pub const MAX_PLAIN_RESPONSE: usize = 350 * 1024;
/// The largest stored response once compressed.
pub const MAX_STORED_RESPONSE: usize = MAX_ITEM_BYTES - RECORD_OVERHEAD_BYTES;
/// The largest response decompression will produce (Lambda's 6 MB payload limit,
/// with room): a corrupt or hostile item cannot exhaust memory.
pub const MAX_DECOMPRESSED: usize = 8 * 1024 * 1024;
/// zstd's compression level: fast, and already several times smaller for JSON.
#[cfg(feature = "zstd")]
const LEVEL: i32 = 3;

/// How a response is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fitted {
    /// As is.
    Plain,
    /// Compressed with zstd.
    Zstd(Vec<u8>),
    /// Too large even compressed: not stored.
    Omitted,
}

/// Decides how to keep `response`.
pub fn fit(response: &[u8]) -> Fitted {
    if response.len() <= MAX_PLAIN_RESPONSE {
        return Fitted::Plain;
    }
    #[cfg(feature = "zstd")]
    match zstd::bulk::compress(response, LEVEL) {
        Ok(compressed) if compressed.len() <= MAX_STORED_RESPONSE => Fitted::Zstd(compressed),
        _ => Fitted::Omitted,
    }
    // Without compression a response over the plain limit cannot be kept.
    #[cfg(not(feature = "zstd"))]
    Fitted::Omitted
}

/// Decompresses a stored response.
pub fn decompress(compressed: &[u8]) -> Result<Vec<u8>, String> {
    #[cfg(feature = "zstd")]
    return zstd::bulk::decompress(compressed, MAX_DECOMPRESSED).map_err(|e| format!("zstd: {e}"));
    #[cfg(not(feature = "zstd"))]
    {
        let _ = (compressed, MAX_DECOMPRESSED);
        Err("the response is compressed with zstd, and this build has no `zstd` feature".to_owned())
    }
}

#[cfg(all(test, feature = "zstd"))]
mod tests {
    use super::*;

    #[test]
    fn small_responses_stay_plain_large_ones_are_compressed_or_omitted() {
        assert_eq!(fit(&[b'a'; 100 * 1024]), Fitted::Plain);
        let json = br#"{"sku":"SKU-RED-MUG","quantity":2},"#.repeat(12_000);
        assert!(json.len() > MAX_PLAIN_RESPONSE);
        let Fitted::Zstd(compressed) = fit(&json) else {
            panic!("compressible JSON fits once compressed");
        };
        assert!(compressed.len() < json.len() / 10);
        assert_eq!(decompress(&compressed).unwrap(), json);
        // Pseudo-random bytes do not compress.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..2 * 1024 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(fit(&noise), Fitted::Omitted);
    }

    #[test]
    fn decompression_is_bounded() {
        let bomb = zstd::bulk::compress(&vec![0u8; MAX_DECOMPRESSED + 1], 3).unwrap();
        assert!(decompress(&bomb).is_err());
        assert!(decompress(b"not zstd").is_err());
    }
}
