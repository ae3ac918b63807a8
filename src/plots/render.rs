//! Off-screen rendering of one egui frame into an image, through egui-wgpu.

use std::iter;

use egui::{Context, FullOutput, Pos2, RawInput, Rect, TexturesDelta, Ui, Vec2, ViewportId};
use egui_wgpu::{Renderer, RendererOptions, ScreenDescriptor};

use crate::gpu::GpuContext;

/// egui-wgpu's preferred target: its shader writes gamma-space (sRGB-encoded) colours into a
/// non-sRGB format, so the bytes read back are already what a PNG stores.
const TARGET_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// Bytes per pixel of [`TARGET_FORMAT`].
const BYTES_PER_PIXEL: u32 = 4;

/// egui frames run per image, of which only the last is painted. Layouts that measure their
/// contents (grids, centred rows, plot axes sized to their labels) use sizes from the frame
/// before.
const FRAMES: usize = 2;

/// Space between the image border and what `draw` puts in it, in points.
const PAGE_MARGIN: i8 = 12;

/// An error from rendering or encoding a frame.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A side of the requested image is zero or larger than the device allows.
    #[error(
        "invalid image size {width}×{height} pixels: each side must be between 1 and {max_side}"
    )]
    InvalidSize {
        /// Requested width in pixels.
        width: u32,
        /// Requested height in pixels.
        height: u32,
        /// Largest side the device supports for a 2D texture.
        max_side: u32,
    },
    /// The scale factor is not a positive finite number.
    #[error("invalid pixels per point {0}: expected a finite value above 0")]
    InvalidPixelsPerPoint(f32),
    /// The GPU ran out of memory for the image or its read-back buffer.
    #[error("the GPU could not allocate a {width}×{height} image: {message}")]
    OutOfMemory {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
        /// wgpu's description of the failure.
        message: String,
    },
    /// Waiting for the GPU or mapping the read-back buffer failed.
    #[error("reading the rendered image back from the GPU failed: {0}")]
    ReadBack(String),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Encode(#[from] png::EncodingError),
}

/// Pixels of a rendered frame: rows top to bottom, each pixel RGBA with 8 bits per channel in
/// sRGB, alpha straight (not premultiplied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height × 4` bytes.
    pub rgba: Vec<u8>,
}

impl RenderedImage {
    /// Returns the pixel at column `x` and row `y` (row 0 at the top), or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let start = ((y * self.width + x) * BYTES_PER_PIXEL) as usize;
        let bytes = self.rgba.get(start..start + BYTES_PER_PIXEL as usize)?;
        bytes.try_into().ok()
    }

    /// Encodes the image as an 8-bit RGBA PNG tagged as sRGB.
    pub fn encode_png(&self) -> Result<Vec<u8>, RenderError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width, self.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.rgba)?;
        writer.finish()?;
        Ok(bytes)
    }
}

/// Renders egui frames into images without a window, on a wgpu device.
///
/// Each call starts from a fresh [`egui::Context`] in the light theme with a white page, so an
/// image depends
/// only on what `draw` paints and never on an earlier image. The egui-wgpu renderer, and with
/// it the compiled render pipeline, is kept between calls.
pub struct OffscreenRenderer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    renderer: Renderer,
}

impl std::fmt::Debug for OffscreenRenderer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // egui_wgpu::Renderer does not implement Debug.
        formatter
            .debug_struct("OffscreenRenderer")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl OffscreenRenderer {
    /// Creates a renderer on the engine's device.
    pub fn new(gpu: &GpuContext) -> Self {
        let device = gpu.device.clone();
        let queue = gpu.queue.clone();
        // PREDICTABLE turns off dithering and multisampling, so the same frame gives the same
        // pixels on every run of one adapter.
        let renderer = Renderer::new(&device, TARGET_FORMAT, RendererOptions::PREDICTABLE);
        Self {
            device,
            queue,
            renderer,
        }
    }

    /// Largest image side, in pixels, that the device can render.
    pub fn max_side(&self) -> u32 {
        self.device.limits().max_texture_dimension_2d
    }

    /// Runs `draw` in an egui frame of `size` pixels (`[width, height]`) and returns the
    /// pixels. `draw` gets a [`Ui`] filling the image less a small margin, on a white page.
    pub fn render(
        &mut self,
        size: [u32; 2],
        pixels_per_point: f32,
        draw: impl FnMut(&mut Ui),
    ) -> Result<RenderedImage, RenderError> {
        self.check_size(size)?;
        if !(pixels_per_point.is_finite() && pixels_per_point > 0.0) {
            return Err(RenderError::InvalidPixelsPerPoint(pixels_per_point));
        }

        let size_in_points = Vec2::new(size[0] as f32, size[1] as f32) / pixels_per_point;
        let (context, output, mut textures) = run_frames(size_in_points, pixels_per_point, draw);
        self.upload_textures(&mut textures);
        let rgba = self.paint(&context, output, size, pixels_per_point);
        self.free_textures(&mut textures);

        Ok(RenderedImage {
            width: size[0],
            height: size[1],
            rgba: rgba?,
        })
    }

    /// Renders like [`Self::render`] and encodes the image as PNG.
    pub fn render_to_png(
        &mut self,
        size: [u32; 2],
        pixels_per_point: f32,
        draw: impl FnMut(&mut Ui),
    ) -> Result<Vec<u8>, RenderError> {
        self.render(size, pixels_per_point, draw)?.encode_png()
    }

    fn check_size(&self, [width, height]: [u32; 2]) -> Result<(), RenderError> {
        let max_side = self.max_side();
        let valid = |side: u32| (1..=max_side).contains(&side);
        if valid(width) && valid(height) {
            Ok(())
        } else {
            Err(RenderError::InvalidSize {
                width,
                height,
                max_side,
            })
        }
    }

    /// Applies the new and changed textures. epaint checks that every delta is taken out of
    /// `textures` before it is dropped.
    fn upload_textures(&mut self, textures: &mut TexturesDelta) {
        for (id, deltas) in textures.set.drain() {
            for delta in deltas {
                self.renderer
                    .update_texture(&self.device, &self.queue, id, &delta);
            }
        }
    }

    fn free_textures(&mut self, textures: &mut TexturesDelta) {
        for id in textures.free.drain() {
            self.renderer.free_texture(&id);
        }
    }

    /// Tessellates the frame, paints it into a new texture and reads the texture back.
    fn paint(
        &mut self,
        context: &Context,
        output: FullOutput,
        [width, height]: [u32; 2],
        pixels_per_point: f32,
    ) -> Result<Vec<u8>, RenderError> {
        let screen = ScreenDescriptor {
            size_in_pixels: [width, height],
            pixels_per_point,
        };
        let primitives = context.tessellate(output.shapes, pixels_per_point);

        let memory_scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let target = self.create_target(width, height);
        let read_back = ReadBackBuffer::new(&self.device, width, height);

        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("plots: egui frame"),
            });
        let callback_buffers = self.renderer.update_buffers(
            &self.device,
            &self.queue,
            &mut encoder,
            &primitives,
            &screen,
        );
        self.record_render_pass(&mut encoder, &target, &primitives, &screen);
        read_back.record_copy(&mut encoder, &target);
        self.queue.submit(
            callback_buffers
                .into_iter()
                .chain(iter::once(encoder.finish())),
        );

        if let Some(error) = pollster::block_on(memory_scope.pop()) {
            return Err(RenderError::OutOfMemory {
                width,
                height,
                message: error.to_string(),
            });
        }
        read_back.read(&self.device)
    }

    fn create_target(&self, width: u32, height: u32) -> wgpu::Texture {
        self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("plots: render target"),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: TARGET_FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        })
    }

    fn record_render_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::Texture,
        primitives: &[egui::ClippedPrimitive],
        screen: &ScreenDescriptor,
    ) {
        let view = target.create_view(&wgpu::TextureViewDescriptor::default());
        // egui_wgpu::Renderer::render takes a pass with a 'static lifetime; the pass still
        // ends when it is dropped at the end of this function.
        let mut pass = encoder
            .begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("plots: egui render pass"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    resolve_target: None,
                    depth_slice: None,
                    ops: wgpu::Operations {
                        // An opaque clear keeps every blended pixel opaque, because egui-wgpu
                        // blends alpha as src·(1 − dst) + dst. Opaque pixels read back the same
                        // premultiplied or straight.
                        load: wgpu::LoadOp::Clear(wgpu::Color::WHITE),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            })
            .forget_lifetime();
        self.renderer.render(&mut pass, primitives, screen);
    }
}

/// Runs [`FRAMES`] egui passes of `draw` and returns the last output, with the texture changes
/// of every pass merged in order.
fn run_frames(
    size_in_points: Vec2,
    pixels_per_point: f32,
    mut draw: impl FnMut(&mut Ui),
) -> (Context, FullOutput, TexturesDelta) {
    let context = Context::default();
    context.set_theme(egui::Theme::Light);
    // Figures in papers sit on white; the light theme's panel colour is a light grey.
    context.style_mut_of(egui::Theme::Light, |style| {
        style.visuals.panel_fill = egui::Color32::WHITE
    });

    let mut textures = TexturesDelta::default();
    let mut output = context.run_ui(raw_input(size_in_points, pixels_per_point), |ui| {
        page(ui, &mut draw)
    });
    for _ in 1..FRAMES {
        textures.append(std::mem::take(&mut output.textures_delta));
        output = context.run_ui(raw_input(size_in_points, pixels_per_point), |ui| {
            page(ui, &mut draw)
        });
    }
    textures.append(std::mem::take(&mut output.textures_delta));
    (context, output, textures)
}

fn raw_input(size_in_points: Vec2, pixels_per_point: f32) -> RawInput {
    let mut input = RawInput {
        screen_rect: Some(Rect::from_min_size(Pos2::ZERO, size_in_points)),
        ..RawInput::default()
    };
    input
        .viewports
        .entry(ViewportId::ROOT)
        .or_default()
        .native_pixels_per_point = Some(pixels_per_point);
    input
}

/// Fills the whole image with the panel colour and runs `draw` inside the page margin.
fn page(ui: &mut Ui, draw: &mut impl FnMut(&mut Ui)) {
    ui.painter()
        .rect_filled(ui.max_rect(), 0.0, ui.visuals().panel_fill);
    egui::Frame::new().inner_margin(PAGE_MARGIN).show(ui, |ui| {
        ui.set_min_size(ui.available_size());
        draw(ui);
    });
}

/// A mappable buffer that receives a copy of the render target, rows padded to wgpu's
/// copy alignment.
struct ReadBackBuffer {
    buffer: wgpu::Buffer,
    width: u32,
    height: u32,
    padded_bytes_per_row: u32,
}

impl ReadBackBuffer {
    fn new(device: &wgpu::Device, width: u32, height: u32) -> Self {
        // Texture-to-buffer copies need each row to start at a multiple of 256 bytes.
        let padded_bytes_per_row =
            (width * BYTES_PER_PIXEL).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("plots: read-back"),
            size: u64::from(padded_bytes_per_row) * u64::from(height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        Self {
            buffer,
            width,
            height,
            padded_bytes_per_row,
        }
    }

    fn record_copy(&self, encoder: &mut wgpu::CommandEncoder, target: &wgpu::Texture) {
        encoder.copy_texture_to_buffer(
            target.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &self.buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(self.padded_bytes_per_row),
                    rows_per_image: Some(self.height),
                },
            },
            wgpu::Extent3d {
                width: self.width,
                height: self.height,
                depth_or_array_layers: 1,
            },
        );
    }

    /// Waits for the copy and returns the rows without their padding.
    fn read(self, device: &wgpu::Device) -> Result<Vec<u8>, RenderError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        self.buffer
            .map_async(wgpu::MapMode::Read, .., move |result| {
                // A failed send means this function already returned with an error.
                let _ = sender.send(result);
            });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|error| RenderError::ReadBack(error.to_string()))?;
        receiver
            .recv()
            .map_err(|error| RenderError::ReadBack(error.to_string()))?
            .map_err(|error| RenderError::ReadBack(error.to_string()))?;

        let row_bytes = (self.width * BYTES_PER_PIXEL) as usize;
        let mut rgba = Vec::with_capacity(row_bytes * self.height as usize);
        {
            let mapped = self
                .buffer
                .get_mapped_range(..)
                .map_err(|error| RenderError::ReadBack(error.to_string()))?;
            for row in mapped.chunks_exact(self.padded_bytes_per_row as usize) {
                rgba.extend_from_slice(&row[..row_bytes]);
            }
        }
        self.buffer.unmap();
        Ok(rgba)
    }
}
