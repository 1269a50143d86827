//! The window sink (`--video-out window`): the remote picture fitted to a resizable window, with
//! the local picture as a small self-view in the bottom-right corner. Drawn in software with
//! minifb (X11); libX11 and libXcursor are loaded with dlopen only when a window is opened, so
//! headless runs need no display library.
//!
//! The window lives on its own thread (minifb windows are not `Send`). [`WindowSink::show`] only
//! puts the picture in a one-picture mailbox and wakes that thread: it never waits for the
//! display. A picture not yet drawn when the next arrives is replaced (counted as skipped). The
//! thread also pumps window events about 60 times a second; when the user closes the window
//! (or presses Escape) it ends and [`VideoSink::is_open`] turns false.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use minifb::{InputCallback, Key, Window, WindowOptions};

use crate::error::VideoError;
use crate::video::render::compose;
use crate::video::sink::{VideoSink, VideoSinkCounters};
use crate::video::VideoFrame;

/// How often the window thread pumps events when no picture arrives.
const EVENT_INTERVAL: Duration = Duration::from_millis(16);

/// Whether an X11 display is named. minifb's X11 backend opens `$DISPLAY` (a Wayland session
/// provides one through Xwayland).
pub fn display_available(display: Option<&std::ffi::OsStr>) -> bool {
    display.is_some_and(|d| !d.is_empty())
}

/// The mailbox between the caller and the window thread.
#[derive(Default)]
struct Mailbox {
    remote: Option<VideoFrame>,
    remote_new: bool,
    local: Option<VideoFrame>,
    local_new: bool,
    quit: bool,
    counters: VideoSinkCounters,
}

struct Shared {
    mailbox: Mutex<Mailbox>,
    wake: Condvar,
    open: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Mailbox> {
        // The mailbox holds plain data that stays valid even if a holder panicked.
        self.mailbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Shows pictures in a window on the display.
pub struct WindowSink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    description: String,
}

impl std::fmt::Debug for WindowSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowSink")
            .field("description", &self.description)
            .field("open", &self.shared.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl WindowSink {
    /// Open a resizable `width x height` window titled `title`. Without `$DISPLAY` this fails
    /// with [`VideoError::NoDisplay`]; if the display or its libraries cannot be used, with
    /// [`VideoError::Window`].
    pub fn open(title: &str, width: u32, height: u32) -> Result<Self, VideoError> {
        let display = std::env::var_os("DISPLAY");
        if !display_available(display.as_deref()) {
            return Err(VideoError::NoDisplay);
        }
        let display = display.unwrap_or_default().to_string_lossy().into_owned();
        let shared = Arc::new(Shared {
            mailbox: Mutex::new(Mailbox::default()),
            wake: Condvar::new(),
            open: AtomicBool::new(true),
        });
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), VideoError>>(1);
        let thread_shared = Arc::clone(&shared);
        let title_owned = title.to_owned();
        let thread = std::thread::Builder::new()
            .name("video-window".into())
            .spawn(move || {
                let options = WindowOptions {
                    resize: true,
                    ..WindowOptions::default()
                };
                let window = Window::new(&title_owned, width as usize, height as usize, options);
                match window {
                    Ok(mut window) => {
                        // Paced by the mailbox, not by minifb's sleep.
                        window.set_target_fps(0);
                        if ready_tx.send(Ok(())).is_ok() {
                            run(&mut window, &thread_shared);
                        }
                    }
                    Err(e) => {
                        let detail = format!("display {display}: {e}");
                        let _ = ready_tx.send(Err(VideoError::Window(detail)));
                    }
                }
                thread_shared.open.store(false, Ordering::Relaxed);
            })
            .map_err(|e| VideoError::Window(format!("cannot start the window thread: {e}")))?;
        let ready = ready_rx.recv().unwrap_or_else(|_| {
            Err(VideoError::Window(
                "the window thread ended unexpectedly".into(),
            ))
        });
        let mut sink = Self {
            shared,
            thread: Some(thread),
            description: format!("window `{title}` ({width}x{height}, resizable)"),
        };
        match ready {
            Ok(()) => Ok(sink),
            Err(e) => {
                sink.join();
                Err(e)
            }
        }
    }

    fn join(&mut self) {
        self.shared.lock().quit = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("video window thread panicked");
            }
        }
    }
}

/// Notes an Escape press. minifb's `is_key_down` only sees the key's state after a whole batch
/// of events, so a quick press and release (or a synthetic one) in one batch would be missed;
/// the callback sees every press.
struct EscapeWatch(std::rc::Rc<std::cell::Cell<bool>>);

impl InputCallback for EscapeWatch {
    fn add_char(&mut self, _uni_char: u32) {}

    fn set_key_state(&mut self, key: Key, down: bool) {
        if key == Key::Escape && down {
            self.0.set(true);
        }
    }
}

/// The window thread: wait for a picture (or the event interval), draw, pump events.
fn run(window: &mut Window, shared: &Shared) {
    let escaped = std::rc::Rc::new(std::cell::Cell::new(false));
    window.set_input_callback(Box::new(EscapeWatch(std::rc::Rc::clone(&escaped))));
    let mut remote: Option<VideoFrame> = None;
    let mut local: Option<VideoFrame> = None;
    let mut buffer: Vec<u32> = Vec::new();
    let mut drawn_size = (0, 0);
    loop {
        let (new_remote, new_local) = {
            let mut mailbox = shared.lock();
            if !(mailbox.remote_new || mailbox.local_new || mailbox.quit) {
                mailbox = shared
                    .wake
                    .wait_timeout(mailbox, EVENT_INTERVAL)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if mailbox.quit {
                return;
            }
            let new_remote = std::mem::take(&mut mailbox.remote_new);
            let new_local = std::mem::take(&mut mailbox.local_new);
            // Swap rather than clone: the mailbox keeps the old buffers for the next picture.
            if new_remote {
                std::mem::swap(&mut mailbox.remote, &mut remote);
                mailbox.counters.shown += 1;
            }
            if new_local {
                std::mem::swap(&mut mailbox.local, &mut local);
            }
            (new_remote, new_local)
        };
        if !window.is_open() || escaped.get() {
            return;
        }
        let (w, h) = window.get_size();
        let size = (w as u32, h as u32);
        if new_remote || new_local || size != drawn_size {
            compose(&mut buffer, size.0, size.1, remote.as_ref(), local.as_ref());
            drawn_size = size;
            if let Err(e) = window.update_with_buffer(&buffer, w, h) {
                tracing::warn!(error = %e, "drawing the video window");
            }
        } else {
            window.update();
        }
    }
}

impl VideoSink for WindowSink {
    fn show(&mut self, remote: &VideoFrame, _now: Instant) -> Result<(), VideoError> {
        let mut mailbox = self.shared.lock();
        mailbox.counters.received += 1;
        if self.thread.is_none() {
            return Err(VideoError::Finished(self.description.clone()));
        }
        if !self.shared.open.load(Ordering::Relaxed) {
            return Ok(());
        }
        if mailbox.remote_new {
            mailbox.counters.skipped += 1;
        }
        match &mut mailbox.remote {
            Some(slot) => slot.clone_from(remote),
            None => mailbox.remote = Some(remote.clone()),
        }
        mailbox.remote_new = true;
        drop(mailbox);
        self.shared.wake.notify_one();
        Ok(())
    }

    fn show_self_view(&mut self, local: &VideoFrame, _now: Instant) -> Result<(), VideoError> {
        if self.thread.is_none() || !self.shared.open.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut mailbox = self.shared.lock();
        match &mut mailbox.local {
            Some(slot) => slot.clone_from(local),
            None => mailbox.local = Some(local.clone()),
        }
        mailbox.local_new = true;
        drop(mailbox);
        self.shared.wake.notify_one();
        Ok(())
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        self.join();
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Relaxed)
    }

    fn counters(&self) -> VideoSinkCounters {
        self.shared.lock().counters
    }
}

impl Drop for WindowSink {
    fn drop(&mut self) {
        self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_detection() {
        assert!(!display_available(None));
        assert!(!display_available(Some("".as_ref())));
        assert!(display_available(Some(":0".as_ref())));
    }
}
