//! The response kept in a record: status, allowed headers and the exact body.
//!
//! A small length-prefixed binary format, so bodies of any bytes round-trip exactly
//! and the record stays compact (DynamoDB items are limited to 400 KB):
//!
//! ```text
//! "LIR1" | status u16 | header count u16 | (name len u16, name, value len u32, value)*
//!        | body kind u8 (0 empty, 1 text, 2 binary) | body bytes (the rest)
//! ```

use lambda_http::Body;
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

const MAGIC: &[u8; 4] = b"LIR1";

/// A response as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// The allowed headers, in their original order (repeated names kept).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body exactly as the handler produced it.
    pub body: StoredBody,
}

/// A body, keeping lambda_http's text / binary distinction so a replay is encoded
/// (base64 or not) exactly like the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredBody {
    /// No body.
    Empty,
    /// A UTF-8 body.
    Text(String),
    /// A binary body.
    Binary(Vec<u8>),
}

/// Why stored bytes could not be read back as a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored response is unreadable: {0}")]
pub struct DecodeError(&'static str);

impl StoredResponse {
    /// Captures `response`'s status, the headers `allowed` accepts, and its body.
    pub fn capture(
        response: &Response<Body>,
        allowed: impl Fn(&HeaderName) -> bool,
    ) -> StoredResponse {
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| allowed(name))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let body = match response.body() {
            Body::Text(text) => StoredBody::Text(text.clone()),
            Body::Binary(bytes) => StoredBody::Binary(bytes.clone()),
            _ => StoredBody::Empty,
        };
        StoredResponse {
            status: response.status(),
            headers,
            body,
        }
    }

    /// The encoded form.
    pub fn encode(&self) -> Vec<u8> {
        let body: &[u8] = match &self.body {
            StoredBody::Empty => &[],
            StoredBody::Text(t) => t.as_bytes(),
            StoredBody::Binary(b) => b,
        };
        let mut out = Vec::with_capacity(16 + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.status.as_u16().to_be_bytes());
        let count = u16::try_from(self.headers.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for (name, value) in self.headers.iter().take(usize::from(count)) {
            let name = name.as_str().as_bytes();
            // Header names are short tokens; values are capped by API Gateway long before 4 GB.
            out.extend_from_slice(&(name.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
            out.extend_from_slice(&name[..name.len().min(usize::from(u16::MAX))]);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out.push(match self.body {
            StoredBody::Empty => 0,
            StoredBody::Text(_) => 1,
            StoredBody::Binary(_) => 2,
        });
        out.extend_from_slice(body);
        out
    }

    /// Reads an encoded response back.
    pub fn decode(bytes: &[u8]) -> Result<StoredResponse, DecodeError> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return Err(DecodeError("unknown format"));
        }
        let status = StatusCode::from_u16(r.u16()?).map_err(|_| DecodeError("bad status"))?;
        let count = r.u16()?;
        let mut headers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            let name =
                HeaderName::from_bytes(r.take(len)?).map_err(|_| DecodeError("bad header name"))?;
            let len = r.u32()? as usize;
            let value = HeaderValue::from_bytes(r.take(len)?)
                .map_err(|_| DecodeError("bad header value"))?;
            headers.push((name, value));
        }
        let body = match r.take(1)?[0] {
            0 if r.0.is_empty() => StoredBody::Empty,
            1 => StoredBody::Text(
                String::from_utf8(r.0.to_vec())
                    .map_err(|_| DecodeError("text body is not UTF-8"))?,
            ),
            2 => StoredBody::Binary(r.0.to_vec()),
            _ => return Err(DecodeError("bad body kind")),
        };
        Ok(StoredResponse {
            status,
            headers,
            body,
        })
    }

    /// The response to send on replay.
    pub fn to_response(&self) -> Response<Body> {
        let mut response = Response::new(match &self.body {
            StoredBody::Empty => Body::Empty,
            StoredBody::Text(t) => Body::Text(t.clone()),
            StoredBody::Binary(b) => Body::Binary(b.clone()),
        });
        *response.status_mut() = self.status;
        let headers: &mut HeaderMap = response.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        response
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: Body) -> Response<Body> {
        Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .header("set-cookie", "session=secret")
            .header("x-trace", "a")
            .header("x-trace", "b")
            .header("location", "/orders/o-1")
            .body(body)
            .unwrap()
    }

    #[test]
    fn round_trips_text_binary_and_empty_bodies() {
        let allowed = |n: &HeaderName| n != "set-cookie";
        for body in [
            Body::Text("{\"orderId\":\"o-1\"} é".into()),
            Body::Binary(vec![0, 255, 1, 254, 10]),
            Body::Empty,
        ] {
            let stored = StoredResponse::capture(&sample(body), allowed);
            let decoded = StoredResponse::decode(&stored.encode()).unwrap();
            assert_eq!(decoded, stored);
            let replay = decoded.to_response();
            assert_eq!(replay.status(), 201);
            assert!(replay.headers().get("set-cookie").is_none());
            let traces: Vec<_> = replay.headers().get_all("x-trace").iter().collect();
            assert_eq!(traces, ["a", "b"]);
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let good = StoredResponse::capture(&sample(Body::Text("x".into())), |_| true).encode();
        for cut in 0..good.len() - 1 {
            let _ = StoredResponse::decode(&good[..cut]);
        }
        assert!(StoredResponse::decode(b"nope").is_err());
        assert!(StoredResponse::decode(b"").is_err());
        let mut bad_kind = good.clone();
        let kind_at = good.len() - 2;
        bad_kind[kind_at] = 9;
        assert!(StoredResponse::decode(&bad_kind).is_err());
    }
}
