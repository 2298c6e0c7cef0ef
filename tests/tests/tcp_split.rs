//! `TcpStream::split` / `into_split`: tokio's `tcp_split.rs` and `tcp_into_split.rs` ported
//! (same assertions; `drop_write` drops the write half once the read is known to be pending
//! instead of after a sleep), plus the owned halves in two tasks at once, `forget`, and the
//! futures-io traits on the halves.

use futures::try_join;
use gpm::net::{TcpListener, TcpStream};
use gpm_tests::{poll_once, rt_test};
use std::future::Future;
use std::io::{Error, Read, Result, Write};
use std::{net, thread};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What tokio's split tests send each way.
const MSG: &[u8] = b"split";

/// A std listener on a free loopback port, and a thread that accepts one connection on it,
/// writes [`MSG`] and hands the stream to `then`.
fn std_peer_writing_msg<R: Send + 'static>(
    then: impl FnOnce(net::TcpStream) -> R + Send + 'static,
) -> Result<(net::SocketAddr, thread::JoinHandle<R>)> {
    let listener = net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;

    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(MSG).unwrap();
        then(stream)
    });
    Ok((addr, handle))
}

/// tokio's check on a read half, borrowed or owned (their `peek`s are inherent methods, no
/// trait to be generic over): two peeks see the same bytes, then a read takes exactly
/// those, and they are [`MSG`].
macro_rules! assert_peek_twice_then_read {
    ($read_half:expr) => {{
        let mut read_buf = [0u8; 32];
        let peek_len1 = $read_half.peek(&mut read_buf[..]).await?;
        let peek_len2 = $read_half.peek(&mut read_buf[..]).await?;
        assert_eq!(peek_len1, peek_len2);

        let read_len = $read_half.read(&mut read_buf[..]).await?;
        assert_eq!(peek_len1, read_len);
        assert_eq!(&read_buf[..read_len], MSG);
    }};
}

/// Runs a test body on `rt` and unwraps its result: tokio's bodies return `io::Result` to use
/// `?`.
fn block_on_io(rt: &gpm::Runtime, body: impl Future<Output = Result<()>>) {
    rt.block_on(body).unwrap();
}

rt_test! {
    /// tokio's `tcp_split::split`: peek twice, read, write through borrowed halves.
    fn split(rt: &gpm::Runtime) {
        block_on_io(rt, async {
            let (addr, handle) = std_peer_writing_msg(|mut stream| {
                let mut read_buf = [0u8; 32];
                let read_len = stream.read(&mut read_buf).unwrap();
                assert_eq!(&read_buf[..read_len], MSG);
            })?;

            let mut stream = TcpStream::connect(&addr).await?;
            let (mut read_half, mut write_half) = stream.split();

            assert_peek_twice_then_read!(read_half);

            assert_eq!(write_half.write(MSG).await?, MSG.len());
            handle.join().unwrap();
            Result::Ok(())
        });
    }
}

rt_test! {
    /// tokio's `tcp_into_split::split`: the owned halves and the peer, all at once.
    fn into_split(rt: &gpm::Runtime) {
        block_on_io(rt, async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;

            let (stream1, (stream2, _)) = try_join! {
                TcpStream::connect(&addr),
                listener.accept(),
            }?;
            let (mut read_half, mut write_half) = stream1.into_split();

            let ((), (), ()) = try_join! {
                async {
                    let len = stream2.write(MSG).await?;
                    assert_eq!(len, MSG.len());

                    let mut read_buf = vec![0u8; 32];
                    let read_len = stream2.read(&mut read_buf).await?;
                    assert_eq!(&read_buf[..read_len], MSG);
                    Result::Ok(())
                },
                async {
                    let len = write_half.write(MSG).await?;
                    assert_eq!(len, MSG.len());
                    Ok(())
                },
                async {
                    assert_peek_twice_then_read!(read_half);
                    Ok(())
                },
            }?;
            Result::Ok(())
        });
    }
}

rt_test! {
    /// tokio's `tcp_into_split::reunite`: halves of two streams do not reunite (and come
    /// back in the error); a stream's own halves do, from either side.
    fn reunite(rt: &gpm::Runtime) {
        block_on_io(rt, async {
            let listener = net::TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;

            let handle = thread::spawn(move || {
                drop(listener.accept().unwrap());
                drop(listener.accept().unwrap());
            });

            let stream1 = TcpStream::connect(&addr).await?;
            let (read1, write1) = stream1.into_split();

            let stream2 = TcpStream::connect(&addr).await?;
            let (_, write2) = stream2.into_split();

            let read1 = match read1.reunite(write2) {
                Ok(_) => panic!("Reunite should not succeed"),
                Err(err) => {
                    assert!(err.to_string().contains("not from the same socket"), "{err}");
                    err.0
                }
            };

            let stream1 = read1.reunite(write1).expect("Reunite should succeed");
            let (read1, write1) = stream1.into_split();
            write1.reunite(read1).expect("Reunite should succeed from the write half");

            handle.join().unwrap();
            Result::Ok(())
        });
    }
}

rt_test! {
    /// tokio's `tcp_into_split::drop_write`: dropping the owned write half (from another
    /// task, while the read half's read is pending) shuts down the write side: the peer
    /// reads end of stream, and so do we once the peer closes.
    fn drop_write(rt: &gpm::Runtime) {
        block_on_io(rt, async {
            let (addr, handle) = std_peer_writing_msg(|mut stream| {
                let mut read_buf = [0u8; 32];
                let res = match stream.read(&mut read_buf) {
                    Ok(0) => Ok(()),
                    Ok(len) => Err(Error::other(format!("Unexpected read: {len} bytes."))),
                    Err(err) => Err(err),
                };

                drop(stream);

                res
            })?;

            let stream = TcpStream::connect(&addr).await?;
            let (mut read_half, write_half) = stream.into_split();

            let mut read_buf = [0u8; 32];
            let read_len = read_half.read(&mut read_buf[..]).await?;
            assert_eq!(&read_buf[..read_len], MSG);

            // The peer sends nothing more until it sees end of stream: this read is pending.
            let mut read = Box::pin(read_half.read(&mut read_buf[..]));
            assert!(poll_once(std::pin::Pin::new(&mut read)).is_pending());
            // Drop it while the read is in progress.
            gpm::spawn(async move { drop(write_half) }).await.unwrap();

            match read.await {
                Ok(0) => {}
                Ok(len) => panic!("Unexpected read: {len} bytes."),
                Err(err) => panic!("Unexpected error: {err}."),
            }

            handle.join().unwrap().unwrap();
            Result::Ok(())
        });
    }
}

rt_test! {
    /// `forget` drops the write half without shutting down the write side: the stream,
    /// reached through the read half, still writes, and the peer sees end of stream only
    /// when the read half (the last owner) drops.
    fn forget_keeps_the_write_side_open(rt: &gpm::Runtime) {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let (read_half, write_half) = client.into_split();
            write_half.forget();
            read_half.as_ref().write_all(b"still open").await.unwrap();
            drop(read_half);
            let mut received = Vec::new();
            AsyncReadExt::read_to_end(&mut server, &mut received).await.unwrap();
            assert_eq!(received, b"still open");
        });
    }
}

/// Echoes one connection through its owned halves (futures-io `copy`), then closes.
async fn echo_once(listener: TcpListener) {
    let (stream, _) = listener.accept().await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    futures::io::copy(&mut reader, &mut writer).await.unwrap();
}

rt_test! {
    /// The owned halves in two tasks at once, both through the poll-based traits and both
    /// blocking (4 MiB each way is more than the socket buffers hold): the reader waits for
    /// readability and the writer for writability, each in its own direction's waker slot,
    /// so neither steals the other's wake-up (a lost one would hang: watchdog).
    fn owned_halves_in_two_tasks(rt: &gpm::Runtime) {
        const BYTES: usize = 4 << 20;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = gpm::spawn(echo_once(listener));
            let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
            let sent: Vec<u8> = (0..BYTES).map(|i| (i * 7 + i / 251) as u8).collect();
            let expected = sent.clone();
            let writing = gpm::spawn(async move {
                futures::AsyncWriteExt::write_all(&mut writer, &sent).await.unwrap();
                futures::AsyncWriteExt::close(&mut writer).await.unwrap();
                writer
            });
            let reading = gpm::spawn(async move {
                let mut received = Vec::with_capacity(BYTES);
                futures::AsyncReadExt::read_to_end(&mut reader, &mut received).await.unwrap();
                (reader, received)
            });
            let writer = writing.await.unwrap();
            let (reader, received) = reading.await.unwrap();
            assert!(received == expected, "echo differs");
            server.await.unwrap();
            reader.reunite(writer).unwrap();
        });
    }
}
