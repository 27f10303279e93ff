//! A strict, minimal HTTP/1.1 client over a [`TcpStream`], for tests that want to see exactly what
//! a server put on the wire (status line, headers, a `Content-Length` body) without a client library.
//!
//! It speaks only what the fakes and the servers under test answer: a `Content-Length` body (or
//! none, for a status that has none). A chunked or unframed answer is an error, on purpose: the
//! judge client pools connections, so an answer whose length cannot be known breaks the next one.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP response as read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The reason phrase after the code, e.g. `OK`.
    pub reason: String,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Exactly `Content-Length` bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection to `host:port`.
#[derive(Debug)]
pub struct Connection {
    host: String,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `addr` (`127.0.0.1:PORT`) with `timeout` on every read and write.
    pub fn open(addr: &str, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection { host: addr.to_owned(), reader: BufReader::new(stream) })
    }

    /// The underlying stream (to write raw bytes, or shut it down).
    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// Sends one request (`Host` and, with a body, `Content-Length` added) and reads its response.
    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        self.read_response()
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&mut self, path: &str, headers: &[(&str, &str)], body: &serde_json::Value) -> io::Result<Response> {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.request("POST", path, &all, body.to_string().as_bytes())
    }

    /// Reads one response, strictly: see [`read_response`].
    pub fn read_response(&mut self) -> io::Result<Response> {
        read_response(&mut self.reader)
    }

    /// True if the server closed the connection: the next read returns end of file.
    pub fn is_closed_by_peer(&mut self) -> bool {
        matches!(self.reader.fill_buf(), Ok([]))
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one response from `reader`: an `HTTP/1.1 NNN Reason` status line, `Name: value` header
/// lines ending in CRLF, a blank line, then exactly `Content-Length` bytes (which must be given,
/// once, unless the status is 1xx, 204 or 304). Anything else is an [`io::ErrorKind::InvalidData`]
/// error, and end of file before the status line is [`io::ErrorKind::UnexpectedEof`].
pub fn read_response(reader: &mut impl BufRead) -> io::Result<Response> {
    let status_line = read_crlf_line(reader)?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"))?;
    let rest = status_line.strip_prefix("HTTP/1.1 ").ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let (code, reason) = rest.split_once(' ').ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    if code.len() != 3 {
        return Err(invalid(format!("bad status code in {status_line:?}")));
    }
    let status: u16 = code.parse().map_err(|_| invalid(format!("bad status code in {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_crlf_line(reader)?.ok_or_else(|| invalid("end of file in the headers".into()))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        if name.is_empty() || name.contains(' ') {
            return Err(invalid(format!("bad header name in {line:?}")));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let lengths: Vec<&str> = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.as_str()).collect();
    if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")) {
        return Err(invalid("a Transfer-Encoding answer (this client wants Content-Length)".into()));
    }
    let no_body = status < 200 || status == 204 || status == 304;
    let len = match lengths.as_slice() {
        [] if no_body => 0,
        [one] => one.parse::<usize>().map_err(|_| invalid(format!("bad Content-Length {one:?}")))?,
        [] => return Err(invalid(format!("status {status} without Content-Length"))),
        _ => return Err(invalid(format!("several Content-Length headers: {lengths:?}"))),
    };
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(Response { status, reason: reason.to_owned(), headers, body })
}

/// One line ending in CRLF, without it; `None` at end of file before any byte. A bare LF is an error.
pub(crate) fn read_crlf_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = reader.by_ref().take(64 * 1024).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if !buf.ends_with(b"\r\n") {
        return Err(invalid(format!("line not ending in CRLF: {:?}", String::from_utf8_lossy(&buf))));
    }
    buf.truncate(buf.len() - 2);
    String::from_utf8(buf).map(Some).map_err(|e| invalid(format!("line not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::read_response;

    #[test]
    fn a_framed_response_parses_and_the_next_one_follows() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n";
        let mut r = &wire[..];
        let first = read_response(&mut r).unwrap();
        assert_eq!((first.status, first.body.as_slice(), first.header("x-a")), (200, &b"hi"[..], Some("b")));
        assert_eq!(read_response(&mut r).unwrap().status, 204);
        assert_eq!(read_response(&mut r).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn unframed_or_sloppy_responses_are_errors() {
        for wire in [
            &b"HTTP/1.1 200 OK\r\n\r\nbody"[..],
            b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ] {
            assert!(read_response(&mut &wire[..]).is_err(), "{:?}", String::from_utf8_lossy(wire));
        }
    }
}
