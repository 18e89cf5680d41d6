//! PNG plots with plotters: the similarity heatmap of example sentences and the distribution of
//! predicted cosine similarity per gold-score bucket.
//!
//! Text needs a font with Hangul. plotters' `ab_glyph` backend (pure Rust, no fontconfig) draws only
//! fonts registered from bytes, so `find_font` locates one: `--font`, `$SIMCSE_FONT`, a system
//! NanumGothic / Noto Sans CJK (Debian: `apt-get install fonts-nanum`), or `--fallback-font` (the
//! NanumGothic that `scripts/fetch-font.sh` caches, passed by `cargo xtask`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{EvalError, Result};
use crate::sts::SetResult;

const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
];

/// The font file to draw with: `explicit`, else `$SIMCSE_FONT`, else the first system candidate,
/// else `fallback` if that file exists.
pub fn find_font(explicit: Option<&Path>, fallback: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("SIMCSE_FONT").map(PathBuf::from))
        .or_else(|| {
            FONT_CANDIDATES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .or_else(|| fallback.filter(|p| p.is_file()).map(Path::to_path_buf))
}

static REGISTERED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Registers the font as plotters' "sans-serif" (once per process; the bytes live as long as it).
pub fn register_font(path: &Path) -> Result<()> {
    let outcome = REGISTERED.get_or_init(|| {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // A font without Hangul would draw every Korean label as a box: refuse it instead.
        let font = ab_glyph::FontRef::try_from_slice(&bytes)
            .map_err(|e| format!("{}: not a TrueType/OpenType font: {e}", path.display()))?;
        if ab_glyph::Font::glyph_id(&font, '한').0 == 0 {
            return Err(format!("{}: the font has no Hangul glyphs", path.display()));
        }
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| {
            format!(
                "{}: not a TrueType/OpenType font plotters can read",
                path.display()
            )
        })?;
        Ok(path.to_path_buf())
    });
    outcome.as_ref().map(|_| ()).map_err(|m| EvalError::Plot {
        path: path.into(),
        message: m.clone(),
    })
}

fn plot_err(path: &Path) -> impl Fn(String) -> EvalError + '_ {
    move |message| EvalError::Plot {
        path: path.into(),
        message,
    }
}

/// A blue sequential colour scale from `lo` (palest) to 1 (darkest): stretched over the data's own range,
/// since an encoder's similarities often all lie in, say, 0.8..1.
fn heat_colour(v: f64, lo: f64) -> RGBColor {
    let t = ((v - lo) / (1.0 - lo).max(1e-9)).clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

/// Heatmap of a similarity matrix with the value in each cell and the sentences listed beside it.
pub fn heatmap(path: &Path, title: &str, sentences: &[String], matrix: &[Vec<f64>]) -> Result<()> {
    let e = plot_err(path);
    let n = sentences.len();
    let cell = 56i32;
    let (left, top) = (50i32, 70i32);
    let width = (left + cell * n as i32 + 40 + 520) as u32;
    let height = (top + cell * n as i32 + 50).max(300) as u32;
    let lo = matrix
        .iter()
        .flatten()
        .copied()
        .fold(1.0f64, f64::min)
        .min(0.99);
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let font = |size: i32| ("sans-serif", size).into_font();
    root.draw(&Text::new(title.to_string(), (left, 20), font(22)))
        .map_err(|x| e(x.to_string()))?;
    for (i, row) in matrix.iter().enumerate() {
        let y = top + cell * i as i32;
        root.draw(&Text::new(
            i.to_string(),
            (left - 22, y + cell / 2 - 8),
            font(16),
        ))
        .map_err(|x| e(x.to_string()))?;
        root.draw(&Text::new(
            i.to_string(),
            (left + cell * i as i32 + cell / 2 - 5, top - 24),
            font(16),
        ))
        .map_err(|x| e(x.to_string()))?;
        for (j, &v) in row.iter().enumerate() {
            let x = left + cell * j as i32;
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                heat_colour(v, lo).filled(),
            ))
            .map_err(|x| e(x.to_string()))?;
            let ink = if (v - lo) / (1.0 - lo).max(1e-9) > 0.55 {
                WHITE
            } else {
                BLACK
            };
            let label = Text::new(
                format!("{v:.2}"),
                (x + 9, y + cell / 2 - 8),
                font(16).color(&ink),
            );
            root.draw(&label).map_err(|x| e(x.to_string()))?;
        }
    }
    let list_x = left + cell * n as i32 + 30;
    root.draw(&Text::new(
        format!("colour scale: {lo:.2} (pale) .. 1.00 (dark)"),
        (left, top + cell * n as i32 + 12),
        font(15),
    ))
    .map_err(|x| e(x.to_string()))?;
    for (i, s) in sentences.iter().enumerate() {
        let short: String = if s.chars().count() > 28 {
            s.chars().take(27).chain(['…']).collect()
        } else {
            s.clone()
        };
        let y = top + cell * i as i32 + cell / 2 - 9;
        root.draw(&Text::new(format!("{i}: {short}"), (list_x, y), font(17)))
            .map_err(|x| e(x.to_string()))?;
    }
    root.present().map_err(|x| e(x.to_string()))
}

/// Gaussian kernel density estimate at `xs`, with Scott's bandwidth (as scipy's `gaussian_kde`).
fn kde(values: &[f64], xs: &[f64]) -> Vec<f64> {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let h = (sd * n.powf(-0.2)).max(1e-3);
    let norm = 1.0 / (n * h * (2.0 * std::f64::consts::PI).sqrt());
    xs.iter()
        .map(|x| {
            norm * values
                .iter()
                .map(|v| (-0.5 * ((x - v) / h).powi(2)).exp())
                .sum::<f64>()
        })
        .collect()
}

/// Gold-score buckets 0-1, 1-2, 2-3, 3-4, 4-5 (5.0 falls in the last).
pub fn bucket(score: f32) -> usize {
    (score.floor() as usize).min(4)
}

/// One density curve of predicted cosine similarity per gold-score bucket.
pub fn density(path: &Path, title: &str, set: &SetResult) -> Result<()> {
    let e = plot_err(path);
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for &(gold, cos) in &set.points {
        groups[bucket(gold)].push(cos);
    }
    // The x range fits the data: anisotropic encoders put every pair in a narrow band near 1.
    let lo = (set.points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) - 0.05).max(-1.0);
    let xs: Vec<f64> = (0..=300)
        .map(|i| lo + (1.0 - lo) * i as f64 / 300.0)
        .collect();
    // Cosine similarity cannot exceed 1: the kernel mass that would spill past it is reflected back
    // (the reflection method), so curves end at 1 instead of trailing off into impossible values.
    let mirrored: Vec<f64> = xs.iter().map(|x| 2.0 - x).collect();
    let curves: Vec<(usize, Vec<f64>)> = groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.len() >= 2)
        .map(|(b, g)| {
            let d = kde(g, &xs).into_iter().zip(kde(g, &mirrored));
            (b, d.map(|(a, m)| a + m).collect())
        })
        .collect();
    let ymax = curves
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .fold(0.0, f64::max)
        * 1.1;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(lo..1.0, 0.0..ymax.max(1e-6))
        .map_err(|x| e(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("cosine similarity of the pair's embeddings")
        .y_desc("density")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|x| e(x.to_string()))?;
    let palette = [
        RGBColor(68, 1, 84),
        RGBColor(59, 82, 139),
        RGBColor(33, 145, 140),
        RGBColor(94, 201, 98),
        RGBColor(220, 160, 0),
    ];
    for (b, curve) in curves {
        let colour = palette[b];
        let label = format!("gold {b}-{} (n={})", b + 1, groups[b].len());
        chart
            .draw_series(LineSeries::new(
                xs.iter().copied().zip(curve),
                colour.stroke_width(3),
            ))
            .map_err(|x| e(x.to_string()))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(x.to_string()))?;
    root.present().map_err(|x| e(x.to_string()))
}
