//! The connected call: sends audio every 20 ms, plays what arrives, carries chat, prints stats,
//! and ends both sides cleanly on hang-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::chat::{ChatError, ChatFrame};
use media::codec::opus::{EncoderConfig, OpusEncoder, FRAME_SAMPLES, MAX_PACKET_BYTES};
use media::jitter::audio::AudioPacket;
use media::netsim::trace::TraceRecorder;
use media::session::{Session, SessionEvent};
use media::stats::{CallStats, ReceiveCounter, Rtt, RttSource};
use native::{AudioSink, AudioSource};
use signaling::client::Client;
use signaling::envelope::EnvelopeKind;
use signaling::identity::{safety_number, CallId, Identity};
use signaling::offer::{CallToken, HangupBody};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::chat_log::ChatLog;
use super::error::client_error_code;
use super::listen_inbox::answer_busy;
use super::live_line::{audio_line, chat_line};
use super::peer_name::chat_label;
use super::playout::Playout;
use super::{now_unix_ms, CallError, CallOptions, CallReport, ChatInput, EndReason};
use crate::terminal_text::escape;

const FRAME: Duration = Duration::from_millis(20);

/// The local ends of the audio path, opened before dialing so a missing device fails at once.
pub(crate) struct MediaEnds {
    source: Option<Box<dyn AudioSource>>,
    sink: Box<dyn AudioSink>,
}

impl MediaEnds {
    /// Sends no audio (a chat-only call): the source is closed now.
    pub(crate) fn drop_source(&mut self) {
        self.source = None;
    }

    pub(crate) fn open(opts: &CallOptions) -> Result<MediaEnds, CallError> {
        let source = match &opts.audio_in {
            Some(spec) => Some(native::open_source(spec)?),
            None => None,
        };
        let sink = native::open_sink(&opts.audio_out)?;
        Ok(MediaEnds { source, sink })
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_media(
    session: Arc<Session>,
    mut events: mpsc::Receiver<SessionEvent>,
    client: &mut Client,
    identity: &Identity,
    peer: CallId,
    call_id: CallToken,
    opts: &mut CallOptions,
    ends: MediaEnds,
    started: Instant,
) -> Result<CallReport, CallError> {
    let MediaEnds {
        mut source,
        mut sink,
    } = ends;
    let mut encoder = OpusEncoder::new(&EncoderConfig::default())?;
    let mut playout = Playout::new()?;
    let mut counter = ReceiveCounter::new(48_000);
    let mut pcm = vec![0i16; FRAME_SAMPLES];
    let mut packet = vec![0u8; MAX_PACKET_BYTES];
    let mut stats = CallStats::default();
    let mut chat_received = ChatLog::default();
    let chat_only = opts.audio_in.is_none();
    let ends_with_input = chat_only && opts.hang_up_at_end_of_input;
    let mut chat_open = false;
    let mut pending_say: Vec<String> = std::mem::take(&mut opts.say);
    let mut chat_input = std::mem::take(&mut opts.chat_input);
    let mut chat_seq = 0u64;
    let mut packets_sent = 0u64;
    let mut bytes_sent = 0u64;
    let mut last_sent_bytes = 0u64;
    let mut last_recv_bytes = 0u64;
    let mut source_done = false;
    let mut input_done = false;
    let mut ping_n = 0u64;
    let mut ping_out: Option<(u64, Instant)> = None;
    let mut recorder = opts
        .record_trace
        .as_ref()
        .map(|_| TraceRecorder::new(48_000));
    // Once the signaling connection is gone `client.recv()` returns `None` at once, every time:
    // stop polling it, or the loop spins.
    let mut signaling_open = true;

    let connected_at = Instant::now();
    let deadline = opts
        .duration
        .map(|d| tokio::time::Instant::from_std(connected_at + d));
    let mut send_tick = tokio::time::interval(FRAME);
    send_tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut play_tick = tokio::time::interval(FRAME);
    play_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
    stats_tick.reset();
    let mut state = session.state_changes();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // SIGTERM (e.g. from a script's `kill`) hangs up as cleanly as Ctrl-C.
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();

    let end = loop {
        tokio::select! {
            _ = send_tick.tick(), if source.is_some() => {
                let Some(src) = source.as_mut() else { continue };
                if !source_done {
                    match src.read_frame(&mut pcm) {
                        Ok(true) => {}
                        Ok(false) => {
                            source_done = true;
                            tracing::info!("audio source ended; sending silence");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "audio source failed; sending silence");
                            source_done = true;
                        }
                    }
                }
                if source_done {
                    pcm.fill(0);
                }
                let n = encoder.encode(&pcm, &mut packet)?;
                if let Err(e) = session.send_audio(Bytes::copy_from_slice(&packet[..n]), FRAME).await {
                    tracing::debug!(error = %e, "audio send failed");
                } else {
                    packets_sent += 1;
                    bytes_sent += n as u64;
                }
            }
            _ = play_tick.tick() => {
                if let Some(frame) = playout.pull(Instant::now(), &mut stats)? {
                    if stats.first_audio_ms.is_none() {
                        stats.first_audio_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                    }
                    stats.audio_level_dbfs = media::codec::pcm::rms_dbfs(frame);
                    if let Err(e) = sink.write_frame(frame) {
                        tracing::warn!(error = %e, "audio sink failed");
                    }
                }
            }
            ev = events.recv() => match ev {
                Some(SessionEvent::Audio(pkt)) => {
                    counter.on_packet(pkt.seq, pkt.timestamp, pkt.payload.len(), pkt.arrival);
                    let packet = audio_packet(&pkt);
                    if let Some(rec) = recorder.as_mut() {
                        rec.record(&packet, pkt.arrival);
                    }
                    playout.insert(packet, pkt.arrival);
                }
                Some(SessionEvent::ChatOpen) => {
                    chat_open = true;
                    for text in pending_say.drain(..) {
                        chat_seq += 1;
                        send_text(&session, chat_seq, &text).await;
                    }
                    if input_done && ends_with_input && opts.duration.is_none() {
                        break EndReason::LocalHangup;
                    }
                }
                Some(SessionEvent::Chat(bytes)) => match ChatFrame::parse(&bytes) {
                    Ok(ChatFrame::Text { text, ts_ms, .. }) => {
                        if opts.print_chat {
                            println!(
                                "[{}] {}: {}",
                                clock(ts_ms),
                                chat_label(opts.known_peers.as_ref(), &peer),
                                escape(&text)
                            );
                        }
                        if !chat_received.push(text) && chat_received.dropped() == 1 {
                            tracing::info!("received chat beyond the kept limit is shown, not kept");
                        }
                    }
                    Ok(ChatFrame::Ping { n }) => {
                        let _ = session.send_chat(Bytes::from(ChatFrame::Pong { n }.encode())).await;
                    }
                    Ok(ChatFrame::Pong { n }) => {
                        if let Some((sent_n, at)) = ping_out.take() {
                            if sent_n == n {
                                stats.offer_rtt(Rtt { value: at.elapsed(), source: RttSource::DataChannel });
                            }
                        }
                    }
                    Ok(ChatFrame::Bye { .. }) => break EndReason::RemoteHangup,
                    Err(ChatError::UnknownType(t)) => {
                        stats.chat_frames_ignored += 1;
                        tracing::debug!(frame_type = ?t, "ignored a chat frame of unknown type");
                    }
                    Err(e) => {
                        stats.chat_frames_malformed += 1;
                        tracing::warn!(error = %e, "dropped a malformed chat frame");
                    }
                },
                Some(SessionEvent::ChatClosed) => break EndReason::RemoteHangup,
                // Video and RTCP feedback events (issue 8) are not used by the audio loop yet.
                Some(_) => {}
                None => break EndReason::ConnectionLost,
            },
            incoming = client.recv(), if signaling_open => match incoming {
                Some(Ok(m)) if m.from == peer && matches!(m.kind, EnvelopeKind::Hangup | EnvelopeKind::Reject) => {
                    match HangupBody::parse(&m.plaintext) {
                        Ok(h) if h.call_id == call_id => break EndReason::RemoteHangup,
                        Ok(h) => tracing::debug!(call = %h.call_id, "hang-up for another call ignored"),
                        Err(e) => tracing::warn!(code = e.code(), error = %e, "ignored an unreadable hang-up from the peer"),
                    }
                }
                Some(Ok(m)) if m.kind == EnvelopeKind::Offer => {
                    answer_busy(client, identity, &m, opts).await;
                }
                Some(Ok(m)) => tracing::debug!(from = %m.from, kind = ?m.kind, "ignored during the call"),
                Some(Err(e)) => tracing::warn!(code = client_error_code(&e), error = %e, "ignored a signaling message"),
                // Losing signaling does not end a connected call: media is peer to peer.
                None => {
                    signaling_open = false;
                    tracing::warn!("signaling connection lost; the call continues");
                }
            },
            line = next_line(&mut chat_input) => match line {
                Some(text) if text.trim().is_empty() => {}
                Some(text) if chat_open => {
                    chat_seq += 1;
                    send_text(&session, chat_seq, &text).await;
                }
                Some(text) => pending_say.push(text),
                None => {
                    // End of input hangs up a chat-only call, once what was typed has been sent.
                    chat_input = ChatInput::None;
                    input_done = true;
                    if chat_open && ends_with_input && opts.duration.is_none() {
                        break EndReason::LocalHangup;
                    }
                }
            },
            _ = stats_tick.tick() => {
                let transport = session.transport_stats().await;
                stats.elapsed_s = connected_at.elapsed().as_secs_f64();
                if let Some(rtt) = transport.rtt_measurement() {
                    stats.offer_rtt(rtt);
                }
                if chat_open {
                    // RTT over the data channel: what a chat message actually experiences.
                    ping_n += 1;
                    ping_out = Some((ping_n, Instant::now()));
                    let _ = session.send_chat(Bytes::from(ChatFrame::Ping { n: ping_n }.encode())).await;
                }
                stats.candidate_type = transport.local_candidate_type;
                stats.packets_sent = packets_sent;
                fill_receive(&mut stats, &counter);
                stats.send_kbps = (bytes_sent - last_sent_bytes) as f64 * 8.0 / 1e3;
                stats.recv_kbps = (counter.bytes() - last_recv_bytes) as f64 * 8.0 / 1e3;
                last_sent_bytes = bytes_sent;
                last_recv_bytes = counter.bytes();
                if opts.live_stats {
                    if chat_only {
                        eprintln!("{}", chat_line(&stats));
                    } else {
                        eprintln!("{}", audio_line(&stats));
                    }
                }
            }
            _ = sleep_until(deadline) => break EndReason::DurationElapsed,
            _ = &mut ctrl_c => break EndReason::LocalHangup,
            _ = terminated(&mut sigterm) => break EndReason::LocalHangup,
            _ = state.changed() => {
                if session.is_failed_or_closed() {
                    break EndReason::ConnectionLost;
                }
            }
        }
    };

    if matches!(end, EndReason::DurationElapsed | EndReason::LocalHangup) {
        // Tell the peer both ways: the data channel is fastest, signaling works if media broke.
        let bye = ChatFrame::Bye {
            reason: signaling::offer::reason::HANG_UP.into(),
        };
        let _ = session.send_chat(Bytes::from(bye.encode())).await;
        let body = serde_json::to_vec(&HangupBody {
            call_id,
            reason: signaling::offer::reason::HANG_UP.into(),
        })
        .unwrap_or_default();
        let _ = client.send(&peer, EnvelopeKind::Hangup, &body).await;
    }
    session.close().await;
    if let Err(e) = sink.finish() {
        tracing::warn!(error = %e, "finishing the audio sink");
    }

    stats.elapsed_s = connected_at.elapsed().as_secs_f64();
    stats.packets_sent = packets_sent;
    fill_receive(&mut stats, &counter);
    playout.fill_stats(&mut stats);
    if let (Some(path), Some(rec)) = (&opts.record_trace, recorder) {
        std::fs::write(path, rec.into_trace().to_string()).map_err(|e| {
            CallError::Io(format!(
                "could not write the trace to {}: {e}",
                path.display()
            ))
        })?;
    }
    if let Some(path) = &opts.stats_json {
        let json = serde_json::to_vec_pretty(&stats).unwrap_or_default();
        std::fs::write(path, json).map_err(|e| {
            CallError::Io(format!("could not write stats to {}: {e}", path.display()))
        })?;
    }
    if opts.live_stats {
        let line = if chat_only {
            chat_line(&stats)
        } else {
            audio_line(&stats)
        };
        eprintln!("call ended ({end:?}): {line}");
    }
    Ok(CallReport {
        peer,
        safety_number: safety_number(&identity.call_id(), &peer).to_string(),
        stats,
        chat_received: chat_received.into_texts(),
        end,
    })
}

fn audio_packet(pkt: &media::session::ReceivedRtp) -> AudioPacket {
    AudioPacket {
        seq: pkt.seq,
        timestamp: pkt.timestamp,
        ssrc: pkt.ssrc,
        payload: pkt.payload.clone(),
    }
}

fn fill_receive(stats: &mut CallStats, counter: &ReceiveCounter) {
    stats.packets_received = counter.received();
    stats.packets_lost = counter.lost();
    stats.loss_fraction = if counter.expected() > 0 {
        counter.lost().max(0) as f64 / counter.expected() as f64
    } else {
        0.0
    };
    stats.jitter_ms = counter.jitter().as_secs_f64() * 1e3;
}

async fn send_text(session: &Session, seq: u64, text: &str) {
    match ChatFrame::text(seq, now_unix_ms(), text) {
        Ok(frame) => {
            if let Err(e) = session.send_chat(Bytes::from(frame.encode())).await {
                eprintln!("chat message not sent: {}", escape(&e.to_string()));
            }
        }
        Err(e) => eprintln!("chat message not sent: {}", escape(&e.to_string())),
    }
}

pub(crate) async fn next_line(input: &mut ChatInput) -> Option<String> {
    match input {
        ChatInput::None => std::future::pending().await,
        ChatInput::Lines(rx) => rx.recv().await,
    }
}

async fn terminated(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// `HH:MM:SS` (UTC) of a Unix-milliseconds timestamp.
fn clock(ts_ms: u64) -> String {
    let s = ts_ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}
