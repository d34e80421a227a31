//! The wire format between the worker (`sandbox.rs`) and the extraction child
//! (`child.rs`), and between `PageRenderer` and the rendering child
//! (`render.rs`): each child's argv and the JSON lines it prints on stdout.
//!
//! Kept in one place so both sides change together; the child is the same
//! binary, so there is no version skew to handle.
use crate::domain::document::{ExtractedPage, ProblemKind};
use crate::domain::highlight::WordBox;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the parent tells the child on its command line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChildArgs {
    /// The media type declared by the intake; a hint only, the bytes decide.
    pub media_type: String,
    /// Worker threads (one Tesseract instance each) for the pages of this document.
    pub threads: usize,
    pub limits: ChildLimits,
    pub path: PathBuf,
}

/// The limits both children (extraction and rendering) enforce on the
/// document inside their sandbox, with the same flags on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ChildLimits {
    pub max_pages: u32,
    pub max_total_pages: u32,
    pub max_image_pixels: u64,
    pub max_file_bytes: u64,
}

impl Default for ChildLimits {
    fn default() -> Self {
        ChildLimits { max_pages: 100, max_total_pages: 1000, max_image_pixels: 60_000_000, max_file_bytes: 50_000_000 }
    }
}

impl ChildLimits {
    fn push_argv(&self, argv: &mut Vec<std::ffi::OsString>) {
        for (flag, value) in [
            ("--max-pages", self.max_pages.to_string()),
            ("--max-total-pages", self.max_total_pages.to_string()),
            ("--max-image-pixels", self.max_image_pixels.to_string()),
            ("--max-file-bytes", self.max_file_bytes.to_string()),
        ] {
            argv.push(flag.into());
            argv.push(value.into());
        }
    }

    /// Takes `flag` if it is one of the limits (`Ok(true)`), reading its
    /// value with `value`; `Ok(false)` for any other flag.
    fn take(&mut self, flag: &str, value: &mut dyn FnMut() -> Result<String, String>) -> Result<bool, String> {
        fn number<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("bad {flag}"))
        }
        match flag {
            "--max-pages" => self.max_pages = number(flag, value()?)?,
            "--max-total-pages" => self.max_total_pages = number(flag, value()?)?,
            "--max-image-pixels" => self.max_image_pixels = number(flag, value()?)?,
            "--max-file-bytes" => self.max_file_bytes = number(flag, value()?)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl ChildArgs {
    /// The argv after `sandbox-extract`.
    pub fn to_argv(&self) -> Vec<std::ffi::OsString> {
        let mut argv: Vec<std::ffi::OsString> = vec![
            "--media-type".into(),
            self.media_type.clone().into(),
            "--threads".into(),
            self.threads.to_string().into(),
        ];
        self.limits.push_argv(&mut argv);
        argv.push("--".into());
        argv.push(self.path.clone().into_os_string());
        argv
    }

    /// Parses what `to_argv` produced; anything else is a usage error.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut media_type = None;
        let mut threads = 1usize;
        let mut limits = ChildLimits::default();
        let mut path = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
            if limits.take(flag, &mut value)? {
                continue;
            }
            match flag.as_str() {
                "--media-type" => media_type = Some(value()?),
                "--threads" => threads = value()?.parse().map_err(|_| "bad --threads")?,
                "--" => {
                    path = it.next().map(PathBuf::from);
                    break;
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(ChildArgs {
            media_type: media_type.unwrap_or_default(),
            threads: threads.clamp(1, 64),
            limits,
            path: path.ok_or("missing path after --")?,
        })
    }
}

/// One line of the child's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum ChildMessage {
    /// Sent as soon as the page count is known, so the parent can extend the
    /// wall-clock budget by the per-page allowance.
    Started { pages: u32 },
    /// The final result: every page, in order.
    Finished { pages: Vec<ExtractedPage> },
    /// The document as a whole could not be read.
    Failed { kind: ProblemKind, detail: String },
}

/// What `PageRenderer` tells the rendering child on its command line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RenderArgs {
    /// The declared media type; a hint only, the bytes decide.
    pub media_type: String,
    /// 1-based page number.
    pub page: u32,
    /// The PNG's long side at most, in pixels.
    pub max_long_side: u32,
    /// Also read word boxes with Tesseract.
    pub words: bool,
    pub limits: ChildLimits,
    pub path: PathBuf,
}

impl RenderArgs {
    /// The argv after `sandbox-render`.
    pub fn to_argv(&self) -> Vec<std::ffi::OsString> {
        let mut argv: Vec<std::ffi::OsString> = vec![
            "--media-type".into(),
            self.media_type.clone().into(),
            "--page".into(),
            self.page.to_string().into(),
            "--max-long-side".into(),
            self.max_long_side.to_string().into(),
            "--words".into(),
            if self.words { "1" } else { "0" }.into(),
        ];
        self.limits.push_argv(&mut argv);
        argv.push("--".into());
        argv.push(self.path.clone().into_os_string());
        argv
    }

    /// Parses what `to_argv` produced; anything else is a usage error.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut out = RenderArgs {
            media_type: String::new(),
            page: 1,
            max_long_side: 1600,
            words: false,
            limits: ChildLimits::default(),
            path: PathBuf::new(),
        };
        let mut path = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
            if out.limits.take(flag, &mut value)? {
                continue;
            }
            match flag.as_str() {
                "--media-type" => out.media_type = value()?,
                "--page" => out.page = value()?.parse().map_err(|_| "bad --page")?,
                "--max-long-side" => out.max_long_side = value()?.parse().map_err(|_| "bad --max-long-side")?,
                "--words" => out.words = value()? == "1",
                "--" => {
                    path = it.next().map(PathBuf::from);
                    break;
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        out.path = path.ok_or("missing path after --")?;
        out.max_long_side = out.max_long_side.clamp(16, 10_000);
        Ok(out)
    }
}

/// The rendering child's one result line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum RenderMessage {
    Rendered {
        width: u32,
        height: u32,
        png_base64: String,
        /// Word boxes in the PNG's pixels (empty unless asked for).
        words: Vec<WordBox>,
        /// Clockwise rotation applied to make the page upright (0, 90, 180, 270).
        rotated_clockwise: u16,
        /// Pages in the document.
        pages: u32,
    },
    NoSuchPage { requested: u32, pages: u32 },
    Failed { kind: ProblemKind, detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_args_survive_the_command_line() {
        let args = RenderArgs {
            media_type: "application/pdf".into(),
            page: 3,
            max_long_side: 1200,
            words: true,
            limits: ChildLimits { max_pages: 7, max_total_pages: 70, max_image_pixels: 1234, max_file_bytes: 99 },
            path: PathBuf::from("/tmp/x -- y.pdf"),
        };
        let argv: Vec<String> = args.to_argv().into_iter().map(|s| s.into_string().unwrap()).collect();
        assert_eq!(RenderArgs::parse(&argv).unwrap(), args);
    }

    #[test]
    fn child_args_survive_the_command_line() {
        let args = ChildArgs {
            media_type: "image/png".into(),
            threads: 3,
            limits: ChildLimits { max_pages: 7, max_total_pages: 70, max_image_pixels: 1234, max_file_bytes: 99 },
            path: PathBuf::from("/tmp/a file --with dashes.png"),
        };
        let argv: Vec<String> = args.to_argv().into_iter().map(|s| s.into_string().unwrap()).collect();
        assert_eq!(ChildArgs::parse(&argv).unwrap(), args);
    }

    #[test]
    fn a_failure_message_is_one_json_line_with_a_stable_kind() {
        let msg = ChildMessage::Failed { kind: ProblemKind::TooLarge, detail: "x".into() };
        let line = serde_json::to_string(&msg).unwrap();
        assert_eq!(line, r#"{"event":"failed","kind":"too_large","detail":"x"}"#);
        assert_eq!(serde_json::from_str::<ChildMessage>(&line).unwrap(), msg);
    }
}
