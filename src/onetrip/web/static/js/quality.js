/* Draws the quality dashboard's charts from the JSON the page carries (ECharts, vendored). */
(function () {
  var el = document.getElementById("chart-data");
  if (!el || !window.echarts) { return; }
  var d = JSON.parse(el.textContent);
  var font = { fontFamily: "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif" };
  function draw(id, option) {
    var node = document.getElementById(id);
    if (!node) { return; }
    var chart = echarts.init(node, null, { renderer: "canvas" });
    option.textStyle = font;
    option.animation = false;
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
  }
  draw("chart-trend", {
    tooltip: { trigger: "axis" }, legend: { data: ["药占比", "耗占比", "医疗服务收入占比"] },
    grid: { left: 40, right: 16, bottom: 30 },
    xAxis: { type: "category", data: d.trend.months }, yAxis: { type: "value" },
    series: [
      { name: "药占比", type: "line", data: d.trend.drug,
        markLine: { silent: true, data: [{ yAxis: d.target, name: "目标" }] } },
      { name: "耗占比", type: "line", data: d.trend.consumables },
      { name: "医疗服务收入占比", type: "line", data: d.trend.service }
    ]
  });
  draw("chart-departments", {
    tooltip: {}, grid: { left: 40, right: 16, bottom: 80 },
    xAxis: { type: "category", data: d.departments.names, axisLabel: { rotate: 40 } },
    yAxis: { type: "value" },
    series: [{ name: "药占比", type: "bar", data: d.departments.drug }]
  });
  draw("chart-top", {
    tooltip: {}, grid: { left: 150, right: 16, bottom: 30 },
    xAxis: { type: "value" }, yAxis: { type: "category", data: d.top.names },
    series: [{ name: "金额", type: "bar", data: d.top.amounts }]
  });
})();
