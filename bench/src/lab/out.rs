//! Where results go: the results folder, CSV files, SVG line charts, progress bars, and the
//! summary table printed at the end.
//!
//! CSV is written by hand (numbers and plain names only, so no quoting is needed: a cell with
//! a comma, quote or newline is rejected rather than silently mangled). Charts use plotters'
//! SVG backend with its built-in text estimator, so no system fonts are needed.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The results folder of one run.
#[derive(Debug, Clone)]
pub struct Output {
    dir: PathBuf,
    progress: bool,
}

impl Output {
    /// Creates `dir` (and its parents); `progress` turns progress bars on (they are also
    /// hidden when stderr is not a terminal).
    pub fn create(dir: impl Into<PathBuf>, progress: bool) -> Result<Output, String> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create results folder {}: {e}", dir.display()))?;
        Ok(Output { dir, progress })
    }

    /// The results folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A progress bar of `len` steps on stderr, hidden when stderr is not a terminal.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if !self.progress || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_owned());
        bar
    }

    /// Writes `table` as `name.csv`; returns its path.
    pub fn csv(&self, name: &str, table: &Table) -> Result<PathBuf, String> {
        let path = self.dir.join(format!("{name}.csv"));
        std::fs::write(&path, table.to_csv()?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// Draws `chart` as `name.svg`; returns its path.
    pub fn svg(&self, name: &str, chart: &Chart) -> Result<PathBuf, String> {
        let path = self.dir.join(format!("{name}.svg"));
        chart
            .draw(&path)
            .map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// A table: a header and rows of cells, printed aligned or written as CSV.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    ///
    /// # Panics
    /// If the row's length differs from the header's (a bug in the experiment).
    pub fn push(&mut self, row: Vec<String>) {
        assert_eq!(row.len(), self.header.len(), "row length != header length");
        self.rows.push(row);
    }

    /// The table as CSV; a cell containing a comma, quote or line break is an error.
    pub fn to_csv(&self) -> Result<String, String> {
        let mut text = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            if let Some(bad) = line.iter().find(|c| c.contains([',', '"', '\n', '\r'])) {
                return Err(format!(
                    "CSV cell {bad:?} needs quoting, which the lab does not do"
                ));
            }
            text.push_str(&line.join(","));
            text.push('\n');
        }
        Ok(text)
    }

    /// The table aligned for a terminal (numbers right-aligned).
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut text = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in line.iter().enumerate() {
                let sep = if i == 0 { "" } else { "  " };
                let _ = write!(text, "{sep}{cell:>width$}", width = widths[i]);
            }
            text.push('\n');
        }
        text
    }
}

/// Formats a float with `digits` decimals, `-` for NaN.
pub fn num(value: f64, digits: usize) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else {
        format!("{value:.digits$}")
    }
}

/// A line chart: named series of `(x, y)` points.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title on top.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Log-scale y axis.
    pub log_y: bool,
    /// `(name, points)`; points with a non-finite coordinate are skipped.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Series longer than this are drawn without point markers.
const MAX_MARKED_POINTS: usize = 60;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(90, 90, 90),
];

impl Chart {
    /// A chart with these labels and no series.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Chart {
        Chart {
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            ..Chart::default()
        }
    }

    /// Adds a series.
    pub fn line(mut self, name: &str, points: Vec<(f64, f64)>) -> Chart {
        let keep = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
        self.series
            .push((name.to_owned(), points.into_iter().filter(keep).collect()));
        self
    }

    /// The data's x and y ranges, widened when degenerate.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let points = self.series.iter().flat_map(|(_, p)| p.iter().copied());
        let (mut x, mut y) = ((f64::MAX, f64::MIN), (f64::MAX, f64::MIN));
        for (px, py) in points {
            x = (x.0.min(px), x.1.max(px));
            y = (y.0.min(py), y.1.max(py));
        }
        if x.0 > x.1 {
            return ((0.0, 1.0), (0.0, 1.0));
        }
        if self.log_y {
            y.0 = y.0.max(1e-9);
            y.1 = y.1.max(y.0 * 10.0);
        } else {
            y.0 = y.0.min(0.0);
            y.1 = if y.1 > y.0 { y.1 * 1.05 } else { y.0 + 1.0 };
        }
        if x.1 <= x.0 {
            x.1 = x.0 + 1.0;
        }
        (x, y)
    }

    fn draw(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70);
        if self.log_y {
            let mut chart = builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?;
            self.draw_mesh_and_series(&mut chart)?;
        } else {
            let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
            self.draw_mesh_and_series(&mut chart)?;
        }
        root.present()?;
        Ok(())
    }

    /// The mesh with the axis labels, the series and their legend, on a linear or a log
    /// y axis alike.
    fn draw_mesh_and_series<'a, DB, X, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    ) -> Result<(), String>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (name, points)) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color));
            // Markers only where they help: a sweep's few points, not a time series.
            if points.len() <= MAX_MARKED_POINTS {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_render() {
        let mut table = Table::new(&["a", "bb"]);
        table.push(vec!["1".into(), "22".into()]);
        assert_eq!(table.to_csv().unwrap(), "a,bb\n1,22\n");
        assert_eq!(table.render(), "a  bb\n1  22\n");
        table.push(vec!["x,y".into(), "2".into()]);
        assert!(table.to_csv().unwrap_err().contains("needs quoting"));
    }

    #[test]
    fn svg_is_written_without_system_fonts() {
        let dir = std::env::temp_dir().join(format!("gpm-lab-test-{}", std::process::id()));
        let out = Output::create(&dir, false).unwrap();
        let chart = Chart::new("t", "x", "y")
            .line("a", vec![(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN)])
            .line("b", vec![]);
        let path = out.svg("chart", &chart).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg") && svg.contains("polyline"), "{svg}");
        let mut log = Chart::new("t", "x", "y").line("a", vec![(0.0, 1e-3), (1.0, 10.0)]);
        log.log_y = true;
        out.svg("log", &log).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
