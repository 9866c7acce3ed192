// The operations form: trigger imagectl_ops through Airflow's REST API as the signed-in user (Airflow checks the
// permission and the params), then show the Images page following the run (imagectl/plugin/page.py inlines this).
(function () {
  var data = JSON.parse(document.getElementById('imagectl-form').textContent);
  var form = document.getElementById('ops-form'), error = document.getElementById('ops-error');
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var reason = form.reason.value.trim(), target = form.target.value.trim();
    if (!reason) { error.textContent = 'Say why: the reason is kept in the history.'; error.hidden = false; return; }
    var conf = {action: form.action.value, environment: form.environment.value, target: target || null, reason: reason};
    document.getElementById('trigger').disabled = true;
    fetch(data.api, {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
                     body: JSON.stringify({logical_date: null, conf: conf})})
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (body) { return [r, body]; }); })
      .then(function (pair) {
        var r = pair[0], body = pair[1];
        if (r.ok && body.dag_run_id) { location.href = data.page + '?run=' + encodeURIComponent(body.dag_run_id); return; }
        var detail = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail || body);
        error.textContent = r.status === 403 ? 'Airflow refused: your role may not trigger this DAG (' + detail + ')'
                                             : 'Airflow refused the run (HTTP ' + r.status + '): ' + detail;
        error.hidden = false; document.getElementById('trigger').disabled = false;
      })
      .catch(function (e) { error.textContent = 'Airflow could not be reached: ' + e; error.hidden = false;
                            document.getElementById('trigger').disabled = false; });
  });
})();
