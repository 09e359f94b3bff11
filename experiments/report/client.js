// Draws the report's charts with d3 (inlined in the page). Reads the chart specs from
// <script id="report-data" type="application/json">. Errors are caught by the page's first
// script (errors.js), which records them on document.documentElement.dataset.errors.
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var W = 760, H = 380, M = { top: 16, right: 16, bottom: 48, left: 72 };
  var color = d3.scaleOrdinal(d3.schemeTableau10);

  function frame(spec) {
    var section = d3.select('#charts').append('section').attr('class', 'chart-box').attr('id', spec.id);
    section.append('h2').text(spec.title);
    var svg = section.append('svg').attr('class', 'chart').attr('viewBox', '0 0 ' + W + ' ' + H).attr('width', W).attr('height', H);
    return { section: section, svg: svg };
  }

  function axes(svg, x, y, xLabel, yLabel, xTicks) {
    var xa = d3.axisBottom(x);
    if (xTicks) xa = xa.ticks(xTicks, '~g');
    svg.append('g').attr('transform', 'translate(0,' + (H - M.bottom) + ')').call(xa);
    svg.append('g').attr('transform', 'translate(' + M.left + ',0)').call(d3.axisLeft(y).ticks(6, '~g'));
    svg.append('text').attr('class', 'axis-label').attr('x', (M.left + W - M.right) / 2).attr('y', H - 10).attr('text-anchor', 'middle').text(xLabel);
    svg.append('text').attr('class', 'axis-label').attr('transform', 'rotate(-90)').attr('x', -(M.top + H - M.bottom) / 2).attr('y', 16).attr('text-anchor', 'middle').text(yLabel);
  }

  function line(spec) {
    var f = frame(spec);
    var series = spec.series.map(function (s) {
      return { name: s.name, points: s.points.filter(function (p) { return p[0] !== null && p[1] !== null && isFinite(p[0]) && isFinite(p[1]) && (!spec.xLog || p[0] > 0); }) };
    }).filter(function (s) { return s.points.length > 0; });
    var all = series.flatMap(function (s) { return s.points; });
    var xExt = d3.extent(all, function (p) { return p[0]; });
    if (xExt[0] === xExt[1]) xExt = [xExt[0] * 0.9 || 0, xExt[1] * 1.1 || 1];
    var x = (spec.xLog ? d3.scaleLog() : d3.scaleLinear()).domain(xExt).range([M.left, W - M.right]);
    if (!spec.xLog) x.nice();
    var yMax = d3.max(all, function (p) { return p[1]; }) || 1;
    var y = d3.scaleLinear().domain([0, yMax]).nice().range([H - M.bottom, M.top]);
    axes(f.svg, x, y, spec.xLabel, spec.yLabel, spec.xLog ? 8 : 0);
    var gen = d3.line().x(function (p) { return x(p[0]); }).y(function (p) { return y(p[1]); });
    series.forEach(function (s, i) {
      var g = f.svg.append('g').attr('class', 'series');
      g.append('path').attr('class', 'mark').attr('d', gen(s.points)).attr('fill', 'none').attr('stroke', color(i)).attr('stroke-width', 1.8);
      g.selectAll('circle').data(s.points).enter().append('circle').attr('class', 'mark')
        .attr('cx', function (p) { return x(p[0]); }).attr('cy', function (p) { return y(p[1]); }).attr('r', 2.5).attr('fill', color(i))
        .append('title').text(function (p) { return s.name + ': (' + p[0] + ', ' + d3.format('.4~g')(p[1]) + ')'; });
    });
    var legend = f.section.append('ul').attr('class', 'legend');
    series.forEach(function (s, i) {
      var li = legend.append('li');
      li.append('span').attr('class', 'swatch').style('background', color(i));
      li.append('span').text(s.name);
    });
  }

  function bar(spec) {
    var f = frame(spec);
    var x = d3.scaleBand().domain(spec.categories).range([M.left, W - M.right]).padding(0.2);
    var yMax = d3.max(spec.values, function (v) { return isFinite(v) ? v : 0; }) || 1;
    var y = d3.scaleLinear().domain([0, yMax]).nice().range([H - M.bottom, M.top]);
    axes(f.svg, x, y, spec.categories.length > 0 ? '' : '', spec.yLabel, 0);
    f.svg.selectAll('rect.mark').data(spec.values).enter().append('rect').attr('class', 'mark')
      .attr('x', function (_, i) { return x(spec.categories[i]); }).attr('width', x.bandwidth())
      .attr('y', function (v) { return y(isFinite(v) ? v : 0); }).attr('height', function (v) { return H - M.bottom - y(isFinite(v) ? v : 0); })
      .attr('fill', function (_, i) { return color(i); })
      .append('title').text(function (v, i) { return spec.categories[i] + ': ' + d3.format('.4~g')(v); });
  }

  data.charts.forEach(function (spec) {
    try {
      if (spec.kind === 'line') line(spec); else bar(spec);
    } catch (e) {
      window.__stratosRecordError(spec.id + ': ' + (e && e.message ? e.message : e));
    }
  });
  document.documentElement.dataset.rendered = String(data.charts.length);
})();
