//! Screenshot sizing and encoding shared by the backends: fit a screen into the asked box without ever
//! enlarging it, scale the pixels, and encode them as png or jpeg.

use broker_core::agent_proto::ImageFormat;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("cannot encode the screenshot as {format}: {reason}")]
    Encode { format: &'static str, reason: String },
    #[error("the screen buffer holds {actual} bytes, not {expected} ({width}x{height} RGB)")]
    BufferSize { expected: usize, actual: usize, width: u32, height: u32 },
}

/// The largest size with the screen's aspect ratio that fits in `max_width` x `max_height` and is not larger
/// than the screen itself (never below 1x1).
pub fn fit(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    let (max_width, max_height) = (max_width.clamp(1, width.max(1)), max_height.clamp(1, height.max(1)));
    // Scale by the tighter of the two bounds, in integers so the result never exceeds either bound.
    if (max_width as u64) * (height as u64) <= (max_height as u64) * (width as u64) {
        let scaled = ((height as u64 * max_width as u64) / width.max(1) as u64) as u32;
        (max_width, scaled.max(1))
    } else {
        let scaled = ((width as u64 * max_height as u64) / height.max(1) as u64) as u32;
        (scaled.max(1), max_height)
    }
}

/// Nearest-neighbour scaling of an RGB buffer: screenshots are thumbnails, where speed matters more than
/// smoothing.
pub fn scale_rgb(rgb: &[u8], width: u32, height: u32, to_width: u32, to_height: u32) -> Result<Vec<u8>, ImageError> {
    let expected = width as usize * height as usize * 3;
    if rgb.len() != expected {
        return Err(ImageError::BufferSize { expected, actual: rgb.len(), width, height });
    }
    let mut out = Vec::with_capacity(to_width as usize * to_height as usize * 3);
    for y in 0..to_height {
        let source_y = (y as u64 * height as u64 / to_height as u64) as usize;
        for x in 0..to_width {
            let source_x = (x as u64 * width as u64 / to_width as u64) as usize;
            let at = (source_y * width as usize + source_x) * 3;
            out.extend_from_slice(&rgb[at..at + 3]);
        }
    }
    Ok(out)
}

pub fn encode_rgb(rgb: &[u8], width: u32, height: u32, format: ImageFormat) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    match format {
        ImageFormat::Png => {
            let failed = |e: png::EncodingError| ImageError::Encode { format: "png", reason: e.to_string() };
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(failed)?;
            writer.write_image_data(rgb).map_err(failed)?;
            writer.finish().map_err(failed)?;
        }
        ImageFormat::Jpeg => {
            let (w, h) = match (u16::try_from(width), u16::try_from(height)) {
                (Ok(w), Ok(h)) => (w, h),
                _ => {
                    return Err(ImageError::Encode { format: "jpeg", reason: format!("{width}x{height} is too large") })
                }
            };
            jpeg_encoder::Encoder::new(&mut out, 85)
                .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| ImageError::Encode { format: "jpeg", reason: e.to_string() })?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_aspect_ratio_and_never_enlarges() {
        let cases = [
            // (screen, box, expected)
            ((1920, 1080), (160, 100), (160, 90)),
            ((1920, 1080), (100, 160), (100, 56)),
            ((1920, 1080), (4000, 4000), (1920, 1080)),
            ((800, 600), (800, 600), (800, 600)),
            ((800, 600), (0, 0), (1, 1)),
            ((1, 1000), (10, 10), (1, 10)),
        ];
        for ((w, h), (mw, mh), expected) in cases {
            let got = fit(w, h, mw, mh);
            assert_eq!(got, expected, "screen {w}x{h} box {mw}x{mh}");
            assert!(got.0 <= w && got.1 <= h);
        }
    }

    #[test]
    fn scaling_samples_the_source_pixels() {
        // Two columns: red then blue; halving the width keeps red, the left one.
        let rgb = [255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255];
        assert_eq!(scale_rgb(&rgb, 2, 2, 1, 1).unwrap(), vec![255, 0, 0]);
        assert_eq!(scale_rgb(&rgb, 2, 2, 2, 2).unwrap(), rgb.to_vec());
        assert!(matches!(scale_rgb(&rgb[..6], 2, 2, 1, 1), Err(ImageError::BufferSize { .. })));
    }

    #[test]
    fn png_round_trips_and_jpeg_has_its_markers() {
        let rgb: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7) as u8).collect();
        let png_bytes = encode_rgb(&rgb, 4, 3, ImageFormat::Png).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(&png_bytes)).read_info().unwrap();
        let mut decoded = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut decoded).unwrap();
        assert_eq!((info.width, info.height), (4, 3));
        assert_eq!(&decoded[..info.buffer_size()], &rgb[..]);

        let jpeg = encode_rgb(&rgb, 4, 3, ImageFormat::Jpeg).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "SOI marker");
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9], "EOI marker");
    }
}
