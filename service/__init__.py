"""The online half. Importing it sets the native libraries' log defaults (`native_logs`): gRPC
reads its verbosity once, when first imported, so this must come before pymilvus loads."""

from service.native_logs import quiet_native_logs

quiet_native_logs()
