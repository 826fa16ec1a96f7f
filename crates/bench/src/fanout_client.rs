//! The fan-out bench's subscriber: a `graphql-transport-ws` client that reads WebSocket frames
//! itself. Ten thousand of them share the measured two cores with the server and receive
//! 200,000 messages a second, so whatever the client spends per message is latency it adds to
//! what it measures. Only what the bench needs: text frames up to 64 KiB from the client
//! (masked with a zero key, which leaves the payload as it is), unfragmented server frames.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

pub struct Subscriber {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// The unread bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
}

impl Subscriber {
    /// Opens `ws://ADDR/graphql/ws` in `graphql-transport-ws` and reads the upgrade's answer.
    pub async fn connect(addr: &str) -> anyhow::Result<Subscriber> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET /graphql/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut subscriber = Subscriber { stream, buffer: vec![0; 4096], start: 0, end: 0 };
        loop {
            anyhow::ensure!(subscriber.end < subscriber.buffer.len(), "upgrade answer too long");
            let n = subscriber.stream.read(&mut subscriber.buffer[subscriber.end..]).await?;
            anyhow::ensure!(n > 0, "server closed during the upgrade");
            subscriber.end += n;
            let read = &subscriber.buffer[..subscriber.end];
            if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&read[..at]);
                anyhow::ensure!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
                subscriber.start = at + 4;
                return Ok(subscriber);
            }
        }
    }

    /// Sends one text message.
    pub async fn send(&mut self, text: &str) -> std::io::Result<()> {
        self.send_frame(TEXT, text.as_bytes()).await
    }

    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.push(0x80 | opcode);
        match u16::try_from(payload.len()) {
            Ok(len) if len < 126 => frame.push(0x80 | len as u8),
            Ok(len) => {
                frame.push(0x80 | 126);
                frame.extend(len.to_be_bytes());
            }
            Err(_) => return Err(std::io::Error::other("message too long for this client")),
        }
        frame.extend([0; 4]);
        frame.extend(payload);
        self.stream.write_all(&frame).await
    }

    /// The next text message and when its last byte was read; `None` once the server closed.
    pub async fn next_text(&mut self) -> anyhow::Result<Option<(&[u8], Instant)>> {
        let mut at = Instant::now();
        loop {
            if let Some((opcode, payload)) = frame(&self.buffer[self.start..self.end]) {
                let payload = self.start + payload.start..self.start + payload.end;
                self.start = payload.end;
                match opcode {
                    TEXT => return Ok(Some((&self.buffer[payload], at))),
                    CLOSE => return Ok(None),
                    PING => {
                        let ping = self.buffer[payload].to_vec();
                        self.send_frame(PONG, &ping).await?;
                    }
                    _ => {}
                }
                continue;
            }
            // Keep the partial frame at the front, and room behind it.
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buffer.len() {
                self.buffer.resize(self.buffer.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buffer[self.end..]).await?;
            if n == 0 {
                return Ok(None);
            }
            at = Instant::now();
            self.end += n;
        }
    }
}

/// The opcode and payload range of the whole frame at the start of `bytes`, if it is all there.
fn frame(bytes: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    let (len, mut header) = match second & 0x7f {
        126 => (u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    if second & 0x80 != 0 {
        header += 4; // a masking key; servers send none
    }
    (bytes.len() >= header + len).then_some((first & 0x0f, header..header + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_whole_or_not_at_all() {
        assert_eq!(frame(&[0x81, 2, b'h', b'i', 0x81]), Some((TEXT, 2..4)));
        assert_eq!(frame(&[0x81, 3, b'h', b'i']), None);
        let mut long = vec![0x81, 126, 0x01, 0x00];
        long.extend([b'x'; 256]);
        assert_eq!(frame(&long), Some((TEXT, 4..260)));
        assert_eq!(frame(&long[..100]), None);
        assert_eq!(frame(&[0x88, 0]), Some((CLOSE, 2..2)));
        assert_eq!(frame(&[0x81]), None);
    }
}
