//! Newline-delimited JSON-RPC over a reader and a writer (stdio): one message per line, and every
//! line that is not a message answered with its JSON-RPC error (see [`super::frames`]) before the
//! next line is read. rmcp's own stdio reader drops a line that is not JSON without a word.
//!
//! The writer is the only thing that touches stdout, so it carries protocol frames and nothing else,
//! and a line is written whole under one lock: rmcp's responses and our error answers never interleave.
//! Answering a bad frame cannot start an error storm: the answer is itself a valid JSON-RPC error,
//! which a peer that echoes it sends back as a message rmcp ignores, not as another bad frame.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use super::frames::{self, Frame, FrameError};

/// The server's end of a line-delimited JSON-RPC connection.
pub struct LineTransport<R, W> {
    reader: BufReader<R>,
    /// The line read so far; kept across cancelled reads (rmcp polls `receive` inside `select!`).
    line: Vec<u8>,
    /// Dropping the rest of a line that grew past the limit.
    discarding: bool,
    max_line_length: usize,
    writer: Arc<Mutex<Option<W>>>,
    /// Error answers being written; `close` waits for them so a last bad line is still answered.
    answers: JoinSet<()>,
}

/// What one bounded read produced.
enum Read {
    Line,
    TooLong,
    Closed,
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    pub fn new(reader: R, writer: W) -> Self {
        Self {
            reader: BufReader::new(reader),
            line: Vec::new(),
            discarding: false,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            writer: Arc::new(Mutex::new(Some(writer))),
            answers: JoinSet::new(),
        }
    }

    /// Reads up to the next newline without holding more than `max_line_length` bytes. Cancel-safe:
    /// bytes are moved from the buffer into `line` with no await in between.
    async fn read_line(&mut self) -> std::io::Result<Read> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Read::Closed);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.map_or(available.len(), |at| at + 1);
            let too_long = !self.discarding && self.line.len() + take > self.max_line_length;
            if !self.discarding && !too_long {
                self.line.extend_from_slice(&available[..take]);
            }
            self.reader.consume(take);
            match (newline.is_some(), self.discarding, too_long) {
                (true, true, _) => self.discarding = false,
                (true, false, false) => return Ok(Read::Line),
                (true, false, true) => {
                    self.line.clear();
                    return Ok(Read::TooLong);
                }
                (false, false, true) => {
                    self.line.clear();
                    self.discarding = true;
                    return Ok(Read::TooLong);
                }
                (false, _, _) => {}
            }
        }
    }

    /// Answers a frame that is not a message; a notification gets no answer.
    fn refuse(&mut self, error: FrameError) {
        if error.notification {
            tracing::debug!(message = %error.message, "ignored a notification that cannot be read");
            return;
        }
        tracing::debug!(code = error.code.0, message = %error.message, "answered a frame that is not an MCP message");
        let (writer, answer) = (self.writer.clone(), error.answer());
        // Spawned (as rmcp spawns its own sends) so that a cancelled `receive` cannot cut a line in half.
        self.answers.spawn(async move {
            if let Err(error) = write_line(writer, encode(&answer)).await {
                tracing::debug!(%error, "could not answer a frame: the client is gone");
            }
        });
    }
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let (writer, line) = (self.writer.clone(), encode(&item));
        async move { write_line(writer, line).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            while self.answers.try_join_next().is_some() {}
            match self.read_line().await {
                Ok(Read::Line) => {}
                Ok(Read::TooLong) => {
                    self.refuse(FrameError::too_long(self.max_line_length));
                    continue;
                }
                Ok(Read::Closed) => return None,
                Err(error) => {
                    tracing::error!(%error, "cannot read from the client");
                    return None;
                }
            }
            let line = std::mem::take(&mut self.line);
            let frame = line.strip_suffix(b"\n").unwrap_or(&line);
            let frame = frame.strip_suffix(b"\r").unwrap_or(frame);
            if frame.trim_ascii().is_empty() {
                continue;
            }
            match frames::read(frame) {
                Frame::Message(message) => return Some(*message),
                Frame::Refused(error) => self.refuse(error),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        while self.answers.join_next().await.is_some() {}
        let writer = self.writer.lock().await.take();
        match writer {
            Some(mut writer) => writer.shutdown().await,
            None => Ok(()),
        }
    }
}

/// One frame as a line. JSON escapes every newline inside strings, so the frame is one line.
fn encode(message: &impl serde::Serialize) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    Ok(line)
}

async fn write_line<W: AsyncWrite + Unpin>(
    writer: Arc<Mutex<Option<W>>>,
    line: std::io::Result<Vec<u8>>,
) -> std::io::Result<()> {
    let line = line?;
    let mut writer = writer.lock().await;
    let writer = writer.as_mut().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))?;
    writer.write_all(&line).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf};

    use super::*;

    type Server = LineTransport<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>>;

    fn connect() -> (Server, WriteHalf<DuplexStream>, Lines<BufReader<ReadHalf<DuplexStream>>>) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server);
        let (client_read, client_write) = tokio::io::split(client);
        (LineTransport::new(server_read, server_write), client_write, BufReader::new(client_read).lines())
    }

    async fn answer(lines: &mut Lines<BufReader<ReadHalf<DuplexStream>>>) -> Value {
        serde_json::from_str(&lines.next_line().await.unwrap().expect("an answer")).unwrap()
    }

    #[tokio::test]
    async fn lines_that_are_not_messages_are_answered_and_reading_goes_on() {
        let (mut server, mut client, mut answers) = connect();
        client
            .write_all(
                b"not json\n\r\n{\"id\":7,\"method\":\"ping\"}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n",
            )
            .await
            .unwrap();

        let message = server.receive().await.expect("the valid line is delivered");
        assert!(
            matches!(message, rmcp::model::JsonRpcMessage::Request(ref r) if r.id == rmcp::model::RequestId::Number(1))
        );
        let (first, second) = (answer(&mut answers).await, answer(&mut answers).await);
        assert_eq!((first["id"].clone(), first["error"]["code"].clone()), (Value::Null, json!(-32700)));
        assert_eq!((second["id"].clone(), second["error"]["code"].clone()), (json!(7), json!(-32600)));
    }

    #[tokio::test]
    async fn a_notification_that_cannot_be_read_is_not_answered() {
        let (mut server, mut client, mut answers) = connect();
        client
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":[]}\n")
            .await
            .unwrap();
        client.write_all(b"[]\n").await.unwrap();
        client.shutdown().await.unwrap();
        assert!(server.receive().await.is_none());
        server.close().await.unwrap();
        assert_eq!(answer(&mut answers).await["error"]["code"], -32600, "only the batch is answered");
        assert!(answers.next_line().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_line_too_long_is_dropped_and_answered_without_being_held() {
        let (mut server, mut client, mut answers) = connect();
        server.max_line_length = 64;
        let long = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":{{\"pad\":\"{}\"}}}}\n",
            "x".repeat(200)
        );
        client.write_all(long.as_bytes()).await.unwrap();
        client.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}\n").await.unwrap();

        let message = server.receive().await.unwrap();
        assert!(
            matches!(message, rmcp::model::JsonRpcMessage::Request(ref r) if r.id == rmcp::model::RequestId::Number(3))
        );
        let refused = answer(&mut answers).await;
        assert_eq!((refused["id"].clone(), refused["error"]["code"].clone()), (Value::Null, json!(-32600)));
    }
}
