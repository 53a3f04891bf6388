{-# LANGUAGE OverloadedStrings #-}
-- A Lambda custom runtime in Haskell: the Runtime API loop over HTTP with http-client.
-- Each event is answered with itself, plus two values that exercise the libraries a GHC program
-- links dynamically: 25! as an Integer (GMP, libgmp.so.10) and a gzip round trip (zlib, libz.so.1).
module Main (main) where

import qualified Codec.Compression.GZip as GZip
import Control.Monad (forever)
import qualified Data.ByteString.Char8 as B
import qualified Data.ByteString.Lazy.Char8 as L
import Network.HTTP.Client
import System.Environment (getEnv)
import System.IO (hPutStrLn, stderr)

main :: IO ()
main = do
  api <- getEnv "AWS_LAMBDA_RUNTIME_API"
  manager <- newManager defaultManagerSettings
  let base = "http://" ++ api ++ "/2018-06-01/runtime/invocation/"
  hPutStrLn stderr ("haskell runtime ready, api " ++ api)
  forever $ do
    next <- parseRequest (base ++ "next")
    event <- httpLbs next {responseTimeout = responseTimeoutNone} manager
    let requestId = maybe "" B.unpack (lookup "Lambda-Runtime-Aws-Request-Id" (responseHeaders event))
    done <- parseRequest (base ++ requestId ++ "/response")
    _ <- httpLbs done {method = "POST", requestBody = RequestBodyLBS (answer (responseBody event))} manager
    pure ()

-- | The event echoed back as JSON (it arrives as JSON), with the two library-backed values.
answer :: L.ByteString -> L.ByteString
answer body =
  L.concat
    [ "{\"echo\":", body
    , ",\"implementation\":\"GHC\""
    , ",\"factorial_25\":", L.pack (show (product [1 .. 25 :: Integer]))
    , ",\"gzip_roundtrip\":", if GZip.decompress packed == body then "true" else "false"
    , ",\"gzip_bytes\":", L.pack (show (L.length packed))
    , "}"
    ]
  where
    packed = GZip.compress body
