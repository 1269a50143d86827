//! Camera capture through nokhwa (V4L2 on Linux, AVFoundation, Media Foundation): frames are
//! decoded to RGB by nokhwa and converted to I420 at the requested size here.
//! With no camera, opening fails with [`VideoError::NoCamera`], whose message names the
//! `pattern` and `.y4m` alternatives.

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};
use nokhwa::Camera;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::error::VideoError;
use crate::spec::CameraSelector;
use crate::video::{rgb_to_i420, VideoFrame, VideoSource};

/// A camera as the system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// Index to use in `camera:INDEX`.
    pub index: String,
    /// Human-readable name, usable (or a substring of it) in `camera:NAME`.
    pub name: String,
}

impl std::fmt::Display for CameraInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.index, self.name)
    }
}

fn query() -> Result<Vec<nokhwa::utils::CameraInfo>, VideoError> {
    nokhwa::query(ApiBackend::Auto)
        .map_err(|e| VideoError::Camera(format!("cannot list cameras: {e}")))
}

/// List the cameras the system has (empty when there are none).
pub fn list_cameras() -> Result<Vec<CameraInfo>, VideoError> {
    Ok(query()?
        .into_iter()
        .map(|c| CameraInfo {
            index: c.index().as_string(),
            name: c.human_name(),
        })
        .collect())
}

/// What `call devices` prints about cameras: one line per camera with the `--video-in` value
/// that picks it, or one line saying there is none (or why listing failed) and what to use
/// instead.
pub fn camera_lines() -> Vec<String> {
    lines_for(list_cameras())
}

fn lines_for(listed: Result<Vec<CameraInfo>, VideoError>) -> Vec<String> {
    match listed {
        Ok(cameras) if cameras.is_empty() => vec![VideoError::NoCamera.to_string()],
        Ok(cameras) => cameras
            .iter()
            .map(|c| format!("camera {c} (--video-in camera:{})", c.index))
            .collect(),
        Err(e) => vec![e.to_string()],
    }
}

/// Pick the camera the selector names among those present.
fn select(selector: Option<&CameraSelector>) -> Result<CameraIndex, VideoError> {
    let cameras = query()?;
    if cameras.is_empty() {
        return Err(VideoError::NoCamera);
    }
    let available = || {
        cameras
            .iter()
            .map(|c| format!("{}: {}", c.index(), c.human_name()))
            .collect()
    };
    let found = match selector {
        None => cameras.first(),
        Some(CameraSelector::Index(i)) => cameras
            .iter()
            .find(|c| c.index().as_index().ok() == Some(*i)),
        Some(CameraSelector::Name(name)) => {
            let lower = name.to_lowercase();
            cameras
                .iter()
                .find(|c| c.human_name() == *name)
                .or_else(|| {
                    cameras
                        .iter()
                        .find(|c| c.human_name().to_lowercase().contains(&lower))
                })
        }
    };
    match found {
        Some(c) => Ok(c.index().clone()),
        None => Err(VideoError::CameraNotFound {
            name: match selector {
                Some(CameraSelector::Index(i)) => i.to_string(),
                Some(CameraSelector::Name(n)) => n.clone(),
                None => "default".into(),
            },
            available: available(),
        }),
    }
}

/// Captures from a camera (`--video-in camera[:INDEX|:NAME]`).
///
/// nokhwa's `Camera` is not `Send`, so it lives on a thread owned by this source; each
/// `next_frame` asks that thread for one frame (the caller paces). Dropping the source stops
/// the stream and joins the thread.
#[derive(Debug)]
pub struct CameraSource {
    requests: Option<mpsc::SyncSender<()>>,
    frames: mpsc::Receiver<Result<VideoFrame, VideoError>>,
    thread: Option<JoinHandle<()>>,
    description: String,
}

/// Open a camera on the current thread (the camera thread).
fn open_camera(
    selector: Option<&CameraSelector>,
    width: u32,
    height: u32,
    fps: u32,
) -> Result<(Camera, String), VideoError> {
    let index = select(selector)?;
    let resolution = Resolution::new(width, height);
    let attempts = [
        RequestedFormatType::Closest(CameraFormat::new(resolution, FrameFormat::YUYV, fps)),
        RequestedFormatType::Closest(CameraFormat::new(resolution, FrameFormat::MJPEG, fps)),
        RequestedFormatType::AbsoluteHighestFrameRate,
    ];
    let mut last_error = String::from("no format tried");
    for requested in attempts {
        match Camera::new(index.clone(), RequestedFormat::new::<RgbFormat>(requested)) {
            Ok(mut camera) => {
                camera
                    .open_stream()
                    .map_err(|e| VideoError::Camera(format!("cannot start camera {index}: {e}")))?;
                let format = camera.camera_format();
                let description = format!(
                    "camera {} `{}` ({} {}x{} @ {} fps, delivered as {width}x{height})",
                    index,
                    camera.info().human_name(),
                    format.format(),
                    format.resolution().width(),
                    format.resolution().height(),
                    format.frame_rate()
                );
                return Ok((camera, description));
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(VideoError::Camera(format!(
        "cannot open camera {index}: {last_error}"
    )))
}

fn capture(camera: &mut Camera, width: u32, height: u32) -> Result<VideoFrame, VideoError> {
    let buffer = camera
        .frame()
        .map_err(|e| VideoError::Camera(format!("capture failed: {e}")))?;
    let resolution = buffer.resolution();
    let rgb = buffer
        .decode_image::<RgbFormat>()
        .map_err(|e| VideoError::Camera(format!("cannot decode camera frame: {e}")))?
        .into_raw();
    Ok(rgb_to_i420(
        &rgb,
        resolution.width(),
        resolution.height(),
        width,
        height,
    ))
}

impl CameraSource {
    /// Open the first camera or the selected one, aiming for `width x height` at `fps`
    /// (the camera's closest mode is used and scaled to `width x height`).
    pub fn open(
        selector: Option<&CameraSelector>,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<Self, VideoError> {
        let selector = selector.cloned();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<String, VideoError>>(1);
        let (request_tx, request_rx) = mpsc::sync_channel::<()>(1);
        let (frame_tx, frame_rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || {
                let mut camera = match open_camera(selector.as_ref(), width, height, fps) {
                    Ok((camera, description)) => {
                        if ready_tx.send(Ok(description)).is_err() {
                            return;
                        }
                        camera
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while request_rx.recv().is_ok() {
                    if frame_tx.send(capture(&mut camera, width, height)).is_err() {
                        break;
                    }
                }
                if let Err(e) = camera.stop_stream() {
                    tracing::debug!(error = %e, "stopping camera stream");
                }
            })
            .map_err(|e| VideoError::Camera(format!("cannot start camera thread: {e}")))?;
        let mut source = Self {
            requests: Some(request_tx),
            frames: frame_rx,
            thread: Some(thread),
            description: String::new(),
        };
        match ready_rx.recv() {
            Ok(Ok(description)) => {
                source.description = description;
                Ok(source)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(VideoError::Camera(
                "the camera thread ended unexpectedly".into(),
            )),
        }
    }
}

impl VideoSource for CameraSource {
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let ended = || VideoError::Camera("the camera thread has stopped".into());
        let requests = self.requests.as_ref().ok_or_else(ended)?;
        requests.send(()).map_err(|_| ended())?;
        self.frames.recv().map_err(|_| ended())?.map(Some)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("camera thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_cameras_never_fails_or_panics() {
        // On a machine without cameras (CI) this is an empty list; with cameras, named entries.
        let cameras = list_cameras().unwrap();
        for camera in &cameras {
            assert!(!camera.index.is_empty());
            eprintln!("camera {camera}");
        }
        // Linux lists cameras as V4L2 devices: none there means an empty list.
        if cfg!(target_os = "linux") && !std::path::Path::new("/dev/video0").exists() {
            assert!(cameras.is_empty(), "{cameras:?}");
            assert_eq!(camera_lines(), vec![VideoError::NoCamera.to_string()]);
        }
    }

    #[test]
    fn camera_lines_say_what_to_use() {
        let none = lines_for(Ok(Vec::new()));
        assert_eq!(none.len(), 1);
        assert!(none[0].contains("no camera") && none[0].contains("--video-in pattern"));
        let two = lines_for(Ok(vec![
            CameraInfo {
                index: "0".into(),
                name: "HD Webcam".into(),
            },
            CameraInfo {
                index: "2".into(),
                name: "Capture".into(),
            },
        ]));
        assert_eq!(
            two,
            vec![
                "camera 0: HD Webcam (--video-in camera:0)",
                "camera 2: Capture (--video-in camera:2)"
            ]
        );
        let failed = lines_for(Err(VideoError::Camera(
            "cannot list cameras: denied".into(),
        )));
        assert!(failed[0].contains("denied") && failed[0].contains("--video-in pattern"));
    }
}
