//! The window sink (`--video-out window`): the remote picture fitted to a resizable window, with
//! the local picture as a small self-view in the bottom-right corner; in a room's call, one tile
//! per member in a grid ([`VideoSink::show_from`], laid out by [`compose_grid`]). Drawn in
//! software with minifb (X11); libX11 and libXcursor are loaded with dlopen only when a window
//! is opened, so headless runs need no display library.
//!
//! The window lives on its own thread (minifb windows are not `Send`). [`WindowSink::show`] only
//! puts the picture in a mailbox holding the newest picture per source and wakes that thread: it
//! never waits for the display. A picture not yet drawn when the next of its source arrives is
//! replaced (counted as skipped). The mailbox holds at most [`MAX_TILES`] sources; pictures of
//! further ones are dropped and counted ([`VideoSinkCounters::too_many_sources`]) until a
//! source is forgotten. The thread draws at most about 60 times a second (a grid of several
//! members would otherwise be drawn once per picture) and pumps window events as often; when
//! the user closes the window (or presses Escape) it ends and [`VideoSink::is_open`] turns
//! false.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use minifb::{InputCallback, Key, Window, WindowOptions};

use crate::error::VideoError;
use crate::video::render::{compose_grid, MAX_TILES};
use crate::video::sink::{VideoSink, VideoSinkCounters};
use crate::video::VideoFrame;

/// How often the window thread pumps events when no picture arrives.
const EVENT_INTERVAL: Duration = Duration::from_millis(16);
/// Least time between two draws: a grid of several members at 30 pictures a second each would
/// otherwise be composed once per picture; pictures arriving sooner wait in the mailbox, where
/// each source's newest replaces the one before (counted as skipped).
const MIN_DRAW_INTERVAL: Duration = Duration::from_millis(16);

/// How long the window thread should hold off drawing `pending` news at `now`, having last
/// drawn at `last_draw`: nothing when there is no news or the last draw was long enough ago.
fn draw_hold(last_draw: Option<Instant>, now: Instant, pending: bool) -> Option<Duration> {
    let next = last_draw? + MIN_DRAW_INTERVAL;
    pending.then(|| next.checked_duration_since(now))?
}

/// Whether an X11 display is named. minifb's X11 backend opens `$DISPLAY` (a Wayland session
/// provides one through Xwayland).
pub fn display_available(display: Option<&std::ffi::OsStr>) -> bool {
    display.is_some_and(|d| !d.is_empty())
}

/// The source [`WindowSink::show`] puts its pictures under (a 1:1 call's one remote).
const SINGLE_SOURCE: u64 = u64::MAX;

/// The newest picture of one source, and whether the window thread has yet to take it.
#[derive(Default)]
struct Slot {
    frame: Option<VideoFrame>,
    new: bool,
}

/// The mailbox between the caller and the window thread. Its `sources` are the tiles the
/// window shows (at most [`MAX_TILES`]); `changed` says a picture arrived or a source went.
#[derive(Default)]
struct Mailbox {
    sources: BTreeMap<u64, Slot>,
    changed: bool,
    local: Option<VideoFrame>,
    local_new: bool,
    quit: bool,
    counters: VideoSinkCounters,
}

impl Mailbox {
    /// Keep `frame` as `source`'s newest picture (replacing one not yet drawn); a new source
    /// past the cap is dropped and counted.
    fn put(&mut self, source: u64, frame: &VideoFrame) {
        if !self.sources.contains_key(&source) && self.sources.len() >= MAX_TILES {
            self.counters.too_many_sources += 1;
            return;
        }
        let slot = self.sources.entry(source).or_default();
        if slot.new {
            self.counters.skipped += 1;
        }
        match &mut slot.frame {
            Some(kept) => kept.clone_from(frame),
            None => slot.frame = Some(frame.clone()),
        }
        slot.new = true;
        self.changed = true;
    }

    /// Drop `source`'s tile. Whether it had one.
    fn forget(&mut self, source: u64) -> bool {
        let had = self.sources.remove(&source).is_some();
        self.changed |= had;
        had
    }

    /// Bring the window thread's pictures (`shown`, by source) up to date: new pictures in,
    /// forgotten sources out. Whether anything changed.
    fn take_into(&mut self, shown: &mut BTreeMap<u64, VideoFrame>) -> bool {
        if !std::mem::take(&mut self.changed) {
            return false;
        }
        shown.retain(|source, _| self.sources.contains_key(source));
        for (source, slot) in &mut self.sources {
            if !std::mem::take(&mut slot.new) {
                continue;
            }
            self.counters.shown += 1;
            // Swap rather than clone: the mailbox keeps the old buffer for the next picture.
            match (shown.get_mut(source), &mut slot.frame) {
                (Some(drawn), Some(newest)) => std::mem::swap(drawn, newest),
                (None, newest) => {
                    if let Some(frame) = newest.take() {
                        shown.insert(*source, frame);
                    }
                }
                (Some(_), None) => {}
            }
        }
        true
    }
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
    let mut remotes: BTreeMap<u64, VideoFrame> = BTreeMap::new();
    let mut local: Option<VideoFrame> = None;
    let mut buffer: Vec<u32> = Vec::new();
    let mut drawn_size = (0, 0);
    let mut last_draw: Option<Instant> = None;
    loop {
        let pending = {
            let mailbox = shared.lock();
            mailbox.changed || mailbox.local_new
        };
        if let Some(hold) = draw_hold(last_draw, Instant::now(), pending) {
            std::thread::sleep(hold);
        }
        let (new_remote, new_local) = {
            let mut mailbox = shared.lock();
            if !(mailbox.changed || mailbox.local_new || mailbox.quit) {
                mailbox = shared
                    .wake
                    .wait_timeout(mailbox, EVENT_INTERVAL)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if mailbox.quit {
                return;
            }
            let new_remote = mailbox.take_into(&mut remotes);
            let new_local = std::mem::take(&mut mailbox.local_new);
            // Swap rather than clone: the mailbox keeps the old buffer for the next picture.
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
            // In the order of the sources' keys, so tiles keep their places.
            let tiles: Vec<&VideoFrame> = remotes.values().collect();
            compose_grid(&mut buffer, size.0, size.1, &tiles, local.as_ref());
            drawn_size = size;
            last_draw = Some(Instant::now());
            if let Err(e) = window.update_with_buffer(&buffer, w, h) {
                tracing::warn!(error = %e, "drawing the video window");
            }
        } else {
            window.update();
        }
    }
}

impl VideoSink for WindowSink {
    fn show(&mut self, remote: &VideoFrame, now: Instant) -> Result<(), VideoError> {
        // One source fills the window: a 1:1 call looks as it always has.
        self.show_from(SINGLE_SOURCE, remote, now)
    }

    fn show_from(
        &mut self,
        source: u64,
        remote: &VideoFrame,
        _now: Instant,
    ) -> Result<(), VideoError> {
        let mut mailbox = self.shared.lock();
        mailbox.counters.received += 1;
        if self.thread.is_none() {
            return Err(VideoError::Finished(self.description.clone()));
        }
        if !self.shared.open.load(Ordering::Relaxed) {
            return Ok(());
        }
        mailbox.put(source, remote);
        drop(mailbox);
        self.shared.wake.notify_one();
        Ok(())
    }

    fn forget(&mut self, source: u64) {
        if self.shared.lock().forget(source) {
            self.shared.wake.notify_one();
        }
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

    fn picture(luma: u8) -> VideoFrame {
        VideoFrame::filled(8, 6, [luma, 128, 128])
    }

    fn lumas(shown: &BTreeMap<u64, VideoFrame>) -> Vec<(u64, u8)> {
        shown.iter().map(|(k, f)| (*k, f.y[0])).collect()
    }

    #[test]
    fn mailbox_keeps_the_newest_picture_per_source() {
        let mut mailbox = Mailbox::default();
        let mut shown = BTreeMap::new();
        assert!(!mailbox.take_into(&mut shown));
        mailbox.put(7, &picture(70));
        mailbox.put(3, &picture(30));
        mailbox.put(7, &picture(71));
        assert!(mailbox.take_into(&mut shown));
        // In key order; source 7's first picture was replaced before it was drawn.
        assert_eq!(lumas(&shown), vec![(3, 30), (7, 71)]);
        assert_eq!((mailbox.counters.shown, mailbox.counters.skipped), (2, 1));
        // Only the source with a new picture changes.
        mailbox.put(3, &picture(31));
        assert!(mailbox.take_into(&mut shown));
        assert_eq!(lumas(&shown), vec![(3, 31), (7, 71)]);
        // A forgotten source leaves the window; forgetting an unknown one changes nothing.
        assert!(mailbox.forget(7));
        assert!(!mailbox.forget(99));
        assert!(mailbox.take_into(&mut shown));
        assert_eq!(lumas(&shown), vec![(3, 31)]);
        assert!(!mailbox.take_into(&mut shown));
    }

    #[test]
    fn mailbox_holds_at_most_max_tiles_sources() {
        let mut mailbox = Mailbox::default();
        let mut shown = BTreeMap::new();
        for source in 0..MAX_TILES as u64 + 3 {
            mailbox.put(source, &picture(source as u8));
        }
        mailbox.take_into(&mut shown);
        assert_eq!(shown.len(), MAX_TILES);
        assert_eq!(mailbox.counters.too_many_sources, 3);
        // Known sources still update; after one goes, a new one gets its place.
        mailbox.put(0, &picture(200));
        mailbox.forget(1);
        mailbox.put(500, &picture(50));
        mailbox.take_into(&mut shown);
        assert_eq!(shown.len(), MAX_TILES);
        assert_eq!(shown[&0].y[0], 200);
        assert!(shown.contains_key(&500) && !shown.contains_key(&1));
        assert_eq!(mailbox.counters.too_many_sources, 3);
    }

    #[test]
    fn draws_are_held_to_the_least_interval() {
        let t0 = Instant::now();
        let soon = t0 + MIN_DRAW_INTERVAL / 4;
        assert_eq!(draw_hold(None, t0, true), None);
        assert_eq!(draw_hold(Some(t0), soon, false), None);
        assert_eq!(
            draw_hold(Some(t0), soon, true),
            Some(MIN_DRAW_INTERVAL - MIN_DRAW_INTERVAL / 4)
        );
        assert_eq!(draw_hold(Some(t0), t0 + MIN_DRAW_INTERVAL * 2, true), None);
    }

    #[test]
    fn display_detection() {
        assert!(!display_available(None));
        assert!(!display_available(Some("".as_ref())));
        assert!(display_available(Some(":0".as_ref())));
    }
}
