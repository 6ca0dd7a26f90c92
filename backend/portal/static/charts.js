// Draws each <canvas data-chart-labels data-chart-values data-chart-label> as a bar chart with
// Chart.js (loaded before this file). The figures come from the page's markup, never from an
// inline script, which the Content-Security-Policy forbids.
document.addEventListener("DOMContentLoaded", () => {
  for (const canvas of document.querySelectorAll("canvas[data-chart-values]")) {
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: JSON.parse(canvas.dataset.chartLabels),
        datasets: [{ label: canvas.dataset.chartLabel, data: JSON.parse(canvas.dataset.chartValues) }],
      },
      options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
});
