using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Host.Admin;

namespace Gatehouse.Host.Cli;

/// <summary>The admin API refused or failed an operation; <see cref="ExitCode"/> is what the command returns.</summary>
internal sealed class AdminCallException(string message, int exitCode) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>
/// The command line's side of the admin API: a base URL, the bearer token, and (with <c>--config</c> and
/// <c>admin.tls</c>) the one certificate the gateway is configured with, trusted exactly.
/// </summary>
internal sealed class AdminClient : IDisposable
{
    /// <summary>Exit codes: the gateway refused (4xx), local usage or config problem, the gateway unreachable or failing.</summary>
    public const int Refused = 1;
    public const int Usage = 2;
    public const int Unreachable = 3;

    private readonly HttpClient _http;

    public AdminClient(Uri baseUrl, string token, X509Certificate2? pinned = null)
    {
        BaseUrl = baseUrl;
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) };
        if (pinned is not null)
        {
            // The configured certificate is trusted as itself (it may be self-signed); anything else must verify normally.
            byte[] expected = pinned.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                errors == System.Net.Security.SslPolicyErrors.None
                || (certificate is not null && certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256).AsSpan().SequenceEqual(expected));
        }

        _http = new HttpClient(handler) { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("gatehouse-cli/1");
    }

    public Uri BaseUrl { get; }

    public Task<T> GetAsync<T>(string path, CancellationToken cancellationToken) =>
        SendAsync<T>(() => _http.GetAsync(path, cancellationToken), cancellationToken);

    public Task<T> PostAsync<T>(string path, object body, CancellationToken cancellationToken) =>
        SendAsync<T>(() => _http.PostAsJsonAsync(path, body, AdminJson.Options, cancellationToken), cancellationToken);

    private async Task<T> SendAsync<T>(Func<Task<HttpResponseMessage>> send, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await send().ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new AdminCallException($"cannot reach the gateway's admin API at {BaseUrl}: {ex.Message}", Unreachable);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AdminCallException($"the gateway's admin API at {BaseUrl} did not answer in time", Unreachable);
        }

        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                return await response.Content.ReadFromJsonAsync<T>(AdminJson.Options, cancellationToken).ConfigureAwait(false)
                       ?? throw new AdminCallException("the admin API sent an empty answer", Unreachable);
            }

            ErrorView? error = null;
            try
            {
                error = await response.Content.ReadFromJsonAsync<ErrorView>(AdminJson.Options, cancellationToken).ConfigureAwait(false);
            }
            catch (System.Text.Json.JsonException)
            {
            }
            catch (NotSupportedException)
            {
            }

            string message = response.StatusCode == HttpStatusCode.Unauthorized
                ? "the gateway refused the admin token (check GATEHOUSE_ADMIN_TOKEN or the config's admin.token)"
                : error?.Error ?? $"the admin API answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
            throw new AdminCallException(message, (int)response.StatusCode >= 500 ? Unreachable : Refused);
        }
    }

    public void Dispose() => _http.Dispose();
}
