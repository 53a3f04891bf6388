defmodule LambdaRuntime do
  @moduledoc """
  A Lambda custom runtime in Elixir: the VM starts once per execution environment and this loop
  serves every event. The Runtime API is spoken over :gen_tcp (HTTP/1.1, one connection per
  request), so the layer needs neither inets nor ssl.
  """

  def main do
    [host, port] = String.split(System.fetch_env!("AWS_LAMBDA_RUNTIME_API"), ":")
    loop({String.to_charlist(host), String.to_integer(port)})
  end

  defp loop(api) do
    {headers, event} = request(api, "GET", "invocation/next", "")
    id = headers["lambda-runtime-aws-request-id"]

    try do
      request(api, "POST", "invocation/#{id}/response", handle(event))
    rescue
      e ->
        message = e |> Exception.message() |> inspect()
        request(api, "POST", "invocation/#{id}/error", ~s({"errorType":"ElixirError","errorMessage":#{message}}))
    end

    loop(api)
  end

  # The function: a JSON answer built by hand (the event is passed through as it came).
  def handle(event) do
    ~s({"runtime":"Elixir #{System.version()} on OTP #{System.otp_release()}","event":#{event}})
  end

  defp request({host, port}, method, path, body) do
    {:ok, sock} = :gen_tcp.connect(host, port, [:binary, active: false, packet: :raw])

    :ok =
      :gen_tcp.send(sock, [
        "#{method} /2018-06-01/runtime/#{path} HTTP/1.1\r\nHost: #{host}\r\n",
        "Content-Length: #{byte_size(body)}\r\nConnection: close\r\n\r\n",
        body
      ])

    response = read_all(sock, [])
    :gen_tcp.close(sock)
    [head, payload] = :binary.split(response, "\r\n\r\n")
    [_status | lines] = String.split(head, "\r\n")

    headers =
      for line <- lines, [k, v] = String.split(line, ":", parts: 2), into: %{} do
        {String.downcase(k), String.trim(v)}
      end

    {headers, payload}
  end

  defp read_all(sock, acc) do
    case :gen_tcp.recv(sock, 0) do
      {:ok, data} -> read_all(sock, [acc, data])
      {:error, :closed} -> IO.iodata_to_binary(acc)
    end
  end
end
