//! Image transformations, as Supabase Storage offers them (`/render/image/…` and the
//! `transform` of signed URLs): resize to a width and/or height (`cover`, the default, fills
//! the box and crops the rest; `contain` fits inside it; `fill` stretches), a quality, and an
//! output format (`origin` or `webp`). Images are never enlarged, the output is at most
//! [`MAX_SIDE`] pixels a side, and sources are bounded in size and pixels and decoded on the
//! blocking pool, a few at a time, under a time limit.

use std::{io::Cursor, sync::LazyLock, time::Duration};

use image::{
    DynamicImage, ImageFormat, ImageReader, Limits, codecs::jpeg::JpegEncoder, imageops::FilterType,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::error::{StorageError, StorageResult};

/// The longest side an output may have (Supabase's default limit).
pub const MAX_SIDE: u32 = 2000;
/// The largest source file transformed.
pub const MAX_SOURCE_BYTES: u64 = 25 * 1024 * 1024;
/// The most pixels a source may have (50 megapixels).
const MAX_SOURCE_PIXELS: u64 = 50_000_000;
/// How long a transformation may take.
const TIME_LIMIT: Duration = Duration::from_secs(10);
/// JPEG quality when none is asked for (imgproxy's default).
const DEFAULT_QUALITY: u8 = 80;

/// Transformations running at once (each holds a decoded image).
static RUNNING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// How the image meets the asked width and height.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Resize {
    /// Fill the box, keeping the aspect ratio, and crop what sticks out (the default).
    #[default]
    Cover,
    /// Fit inside the box, keeping the aspect ratio.
    Contain,
    /// Stretch to the box.
    Fill,
}

/// The output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// The source's.
    #[default]
    Origin,
    /// WebP (lossless).
    Webp,
}

/// A transformation asked for (the default changes nothing but the encoding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transform {
    width: Option<u32>,
    height: Option<u32>,
    resize: Resize,
    quality: Option<u8>,
    format: Format,
}

/// A transformed image: its bytes and type.
#[derive(Debug)]
pub struct Rendered {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its content type.
    pub content_type: &'static str,
}

impl Transform {
    /// Reads `width`, `height`, `resize`, `quality`, `format` from named values (a query
    /// string or a JSON object); `None` when none is given.
    fn read<'a>(field: impl Fn(&str) -> Option<&'a str>) -> StorageResult<Option<Self>> {
        let names = ["width", "height", "resize", "quality", "format"];
        if names.iter().all(|n| field(n).is_none()) {
            return Ok(None);
        }
        let side = |name: &str| -> StorageResult<Option<u32>> {
            match field(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map(|n| (n > 0).then_some(n.min(MAX_SIDE)))
                    .map_err(|_| StorageError::invalid(format!("{name} must be a whole number"))),
            }
        };
        let resize = match field("resize").map(str::trim) {
            None | Some("cover") => Resize::Cover,
            Some("contain") => Resize::Contain,
            Some("fill") => Resize::Fill,
            Some(other) => {
                return Err(StorageError::invalid(format!(
                    "resize must be cover, contain or fill, not {other}"
                )));
            }
        };
        let quality = match field("quality") {
            None => None,
            Some(v) => Some(
                v.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (20..=100).contains(q))
                    .ok_or_else(|| StorageError::invalid("quality must be between 20 and 100"))?,
            ),
        };
        let format = match field("format").map(str::trim) {
            None | Some("origin") => Format::Origin,
            Some("webp") => Format::Webp,
            Some("avif") => {
                return Err(StorageError::invalid(
                    "format avif is not offered by this server: use origin or webp",
                ));
            }
            Some(other) => {
                return Err(StorageError::invalid(format!(
                    "format must be origin or webp, not {other}"
                )));
            }
        };
        Ok(Some(Self {
            width: side("width")?,
            height: side("height")?,
            resize,
            quality,
            format,
        }))
    }

    /// From a query string's parameters.
    pub fn from_query(
        query: &std::collections::HashMap<String, String>,
    ) -> StorageResult<Option<Self>> {
        Self::read(|name| query.get(name).map(String::as_str))
    }

    /// From a JSON object (a signing request's `transform`, a token's claim).
    pub fn from_json(value: &Value) -> StorageResult<Option<Self>> {
        let Value::Object(map) = value else {
            return Ok(None);
        };
        let texts: std::collections::HashMap<String, String> = map
            .iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                Value::Number(n) => Some((k.clone(), n.to_string())),
                _ => None,
            })
            .collect();
        Self::from_query(&texts)
    }

    /// The JSON a signed token keeps.
    pub fn to_json(&self) -> Value {
        json!({
            "width": self.width,
            "height": self.height,
            "resize": match self.resize {
                Resize::Cover => "cover",
                Resize::Contain => "contain",
                Resize::Fill => "fill",
            },
            "quality": self.quality,
            "format": match self.format {
                Format::Origin => "origin",
                Format::Webp => "webp",
            },
        })
    }

    /// What was applied, in the words of Supabase's `x-transformations` header (imgproxy's):
    /// `height:200,width:200,resizing_type:fill,quality:60`.
    pub fn header(&self) -> String {
        let mut parts = Vec::new();
        if let Some(h) = self.height {
            parts.push(format!("height:{h}"));
        }
        if let Some(w) = self.width {
            parts.push(format!("width:{w}"));
        }
        if self.width.is_some() || self.height.is_some() {
            let kind = match self.resize {
                Resize::Cover => "fill",
                Resize::Contain => "fit",
                Resize::Fill => "force",
            };
            parts.push(format!("resizing_type:{kind}"));
        }
        if let Some(q) = self.quality {
            parts.push(format!("quality:{q}"));
        }
        if self.format == Format::Webp {
            parts.push("format:webp".to_owned());
        }
        parts.join(",")
    }

    /// Applies the transformation to an image file on the blocking pool, bounded in time.
    pub async fn render(&self, source: Vec<u8>) -> StorageResult<Rendered> {
        if source.len() as u64 > MAX_SOURCE_BYTES {
            return Err(StorageError::new(
                413,
                "EntityTooLarge",
                "Payload too large",
                "The source image file is too large to process",
            ));
        }
        let _permit = RUNNING.acquire().await.map_err(StorageError::internal)?;
        let transform = self.clone();
        let work = tokio::task::spawn_blocking(move || transform.apply(&source));
        match tokio::time::timeout(TIME_LIMIT, work).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(StorageError::internal(e)),
            Err(_) => Err(StorageError::new(
                504,
                "TimedOut",
                "timed_out",
                "Image request timed out",
            )),
        }
    }

    fn apply(&self, source: &[u8]) -> StorageResult<Rendered> {
        let unreadable =
            || StorageError::invalid("The source image is invalid or unsupported for rendering");
        let reader = ImageReader::new(Cursor::new(source))
            .with_guessed_format()
            .map_err(|_| unreadable())?;
        let origin = reader.format().ok_or_else(unreadable)?;
        let (width, height) = reader.into_dimensions().map_err(|_| unreadable())?;
        if u64::from(width) * u64::from(height) > MAX_SOURCE_PIXELS {
            return Err(StorageError::invalid(
                "The source image resolution is too large to process",
            ));
        }
        let mut reader = ImageReader::new(Cursor::new(source))
            .with_guessed_format()
            .map_err(|_| unreadable())?;
        let mut limits = Limits::default();
        limits.max_image_width = Some(width);
        limits.max_image_height = Some(height);
        reader.limits(limits);
        let image = reader.decode().map_err(|_| unreadable())?;
        let image = self.resized(image);
        let (format, content_type) = match (self.format, origin) {
            (Format::Webp, _) | (Format::Origin, ImageFormat::WebP) => {
                (ImageFormat::WebP, "image/webp")
            }
            (Format::Origin, ImageFormat::Jpeg) => (ImageFormat::Jpeg, "image/jpeg"),
            (Format::Origin, ImageFormat::Gif) => (ImageFormat::Gif, "image/gif"),
            (Format::Origin, _) => (ImageFormat::Png, "image/png"),
        };
        let mut bytes = Vec::new();
        let written = if format == ImageFormat::Jpeg {
            let quality = self.quality.unwrap_or(DEFAULT_QUALITY);
            image
                .to_rgb8()
                .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, quality))
        } else {
            image.write_to(&mut Cursor::new(&mut bytes), format)
        };
        written.map_err(StorageError::internal)?;
        Ok(Rendered {
            bytes,
            content_type,
        })
    }

    /// The image at the asked size: never enlarged; one side given keeps the aspect ratio.
    fn resized(&self, image: DynamicImage) -> DynamicImage {
        let (w, h) = (image.width(), image.height());
        let (target_w, target_h) = match (self.width, self.height) {
            (None, None) => return image,
            (Some(tw), None) => (tw, scaled(h, tw, w)),
            (None, Some(th)) => (scaled(w, th, h), th),
            (Some(tw), Some(th)) => (tw, th),
        };
        let filter = FilterType::Lanczos3;
        match self.resize {
            Resize::Fill => image.resize_exact(target_w.min(w), target_h.min(h), filter),
            Resize::Contain if target_w >= w && target_h >= h => image,
            Resize::Contain => image.resize(target_w, target_h, filter),
            Resize::Cover => {
                // Scale to cover the box (never up), then crop the middle of what sticks out.
                let scale = f64::max(
                    f64::from(target_w) / f64::from(w),
                    f64::from(target_h) / f64::from(h),
                )
                .min(1.0);
                let (sw, sh) = (
                    ((f64::from(w) * scale).round() as u32).max(1),
                    ((f64::from(h) * scale).round() as u32).max(1),
                );
                let scaled = image.resize_exact(sw, sh, filter);
                let (cw, ch) = (target_w.min(sw), target_h.min(sh));
                scaled.crop_imm((sw - cw) / 2, (sh - ch) / 2, cw, ch)
            }
        }
    }
}

/// `side` scaled by `to / from`, at least 1.
fn scaled(side: u32, to: u32, from: u32) -> u32 {
    ((u64::from(side) * u64::from(to) / u64::from(from.max(1))) as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transform(pairs: &[(&str, &str)]) -> Transform {
        let query = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Transform::from_query(&query)
            .expect("valid")
            .expect("a transform")
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .expect("encodes");
        bytes
    }

    fn size(rendered: &Rendered) -> (u32, u32) {
        let image = image::load_from_memory(&rendered.bytes).expect("decodes");
        (image.width(), image.height())
    }

    #[test]
    fn the_header_names_what_was_applied_as_supabase_does() {
        let t = transform(&[("width", "200"), ("height", "200"), ("quality", "60")]);
        assert_eq!(
            t.header(),
            "height:200,width:200,resizing_type:fill,quality:60"
        );
        assert_eq!(
            transform(&[("width", "5000"), ("resize", "contain")]).header(),
            "width:2000,resizing_type:fit"
        );
        let round_trip = Transform::from_json(&t.to_json()).expect("valid");
        assert_eq!(round_trip, Some(t));
        assert_eq!(
            Transform::from_query(&Default::default()).expect("valid"),
            None
        );
        for bad in [
            ("quality", "5"),
            ("resize", "zoom"),
            ("width", "-3"),
            ("format", "avif"),
        ] {
            assert!(
                Transform::from_query(&[bad].map(|(k, v)| (k.to_owned(), v.to_owned())).into())
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn each_resize_mode_gives_its_size_and_nothing_is_enlarged() {
        let source = png(400, 200);
        for (pairs, expected) in [
            (vec![("width", "100"), ("height", "100")], (100, 100)),
            (
                vec![("width", "100"), ("height", "100"), ("resize", "contain")],
                (100, 50),
            ),
            (
                vec![("width", "100"), ("height", "100"), ("resize", "fill")],
                (100, 100),
            ),
            (vec![("width", "100")], (100, 50)),
            (vec![("height", "50")], (100, 50)),
            (
                vec![("width", "800"), ("height", "800"), ("resize", "contain")],
                (400, 200),
            ),
            (vec![("width", "800"), ("height", "100")], (400, 100)),
        ] {
            let rendered = transform(&pairs)
                .render(source.clone())
                .await
                .expect("renders");
            assert_eq!(rendered.content_type, "image/png");
            assert_eq!(size(&rendered), expected, "{pairs:?}");
        }
        let webp = transform(&[("width", "10"), ("format", "webp")])
            .render(source)
            .await
            .expect("renders");
        assert_eq!(webp.content_type, "image/webp");
        assert_eq!(size(&webp), (10, 5));
    }

    #[tokio::test]
    async fn what_is_no_image_is_a_clear_400() {
        let err = transform(&[("width", "10")])
            .render(b"<svg onload=alert(1)>".to_vec())
            .await
            .expect_err("not an image");
        assert_eq!(err.status, 400);
    }
}
