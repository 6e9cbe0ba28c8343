<?php
/**
 * Plugin Name: flattr-node
 * Description: Flattr buttons from your own flattr-node: a [flattr] shortcode, a button under every post, rel="payment" links in the head and feeds, and the node as a trusted oEmbed provider.
 * Version: 0.1.0
 * Requires at least: 5.9
 * Requires PHP: 7.4
 * License: MIT
 * Text Domain: flattr-node
 *
 * Settings > flattr-node: the node's address (https://flattr.example.org),
 * your username on it, whether to append the button to posts, and an
 * optional API token to register each post as a thing when it is published.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit; // Only inside WordPress.
}

const FLATTR_NODE_OPTION = 'flattr_node_settings';

/** The settings, with defaults. */
function flattr_node_settings() {
	$defaults = array(
		'node'     => '',
		'username' => '',
		'append'   => 1,
		'size'     => 'default',
		'script'   => 1,
		'token'    => '',
	);
	$saved = get_option( FLATTR_NODE_OPTION, array() );
	return wp_parse_args( is_array( $saved ) ? $saved : array(), $defaults );
}

/** The node's base URL without a trailing slash, or '' if not set or not http(s). */
function flattr_node_base() {
	$settings = flattr_node_settings();
	$node     = untrailingslashit( esc_url_raw( $settings['node'], array( 'http', 'https' ) ) );
	return $node;
}

/** Flattr's auto-submit URL for a post: the thing is created on its first flattr. */
function flattr_node_autosubmit_url( $post_url, $title = '' ) {
	$node     = flattr_node_base();
	$settings = flattr_node_settings();
	if ( '' === $node || '' === $settings['username'] ) {
		return '';
	}
	$params = array(
		'user_id' => $settings['username'],
		'url'     => $post_url,
	);
	if ( '' !== $title ) {
		$params['title'] = wp_strip_all_tags( $title );
	}
	return $node . '/submit/auto?' . http_build_query( $params, '', '&', PHP_QUERY_RFC3986 );
}

/** The button: a link to the confirmation page around the count badge (no JavaScript needed). */
function flattr_node_button( $post_url, $title = '', $size = 'default', $thing_id = 0 ) {
	$node = flattr_node_base();
	if ( '' === $node ) {
		return '';
	}
	$size = ( 'compact' === $size ) ? 'compact' : 'default';
	if ( $thing_id > 0 ) {
		$href  = $node . '/things/' . absint( $thing_id ) . '/flattr';
		$badge = $node . '/things/' . absint( $thing_id ) . '/badge.svg';
		if ( 'compact' === $size ) {
			$badge .= '?size=compact';
		}
	} else {
		$href = flattr_node_autosubmit_url( $post_url, $title );
		if ( '' === $href ) {
			return '';
		}
		$badge = $node . '/badge.svg?' . http_build_query(
			array_filter(
				array(
					'url'  => $post_url,
					'size' => 'compact' === $size ? 'compact' : null,
				)
			),
			'',
			'&',
			PHP_QUERY_RFC3986
		);
	}
	list( $width, $height ) = ( 'compact' === $size ) ? array( 110, 20 ) : array( 56, 64 );
	$alt  = sprintf( /* translators: %s: post title */ __( 'Flattr this: %s', 'flattr-node' ), wp_strip_all_tags( $title ) );
	$html = sprintf(
		'<span class="flattr-node flattr-node-%1$s"><a class="flattr-node-button" href="%2$s" data-flattr-node="%3$s" data-flattr-url="%4$s"%5$s rel="payment"><img src="%6$s" width="%7$d" height="%8$d" alt="%9$s"></a></span>',
		esc_attr( $size ),
		esc_url( $href ),
		esc_attr( $node ),
		esc_url( $post_url ),
		$thing_id > 0 ? ' data-flattr-thing="' . absint( $thing_id ) . '"' : '',
		esc_url( $badge ),
		$width,
		$height,
		esc_attr( $alt )
	);
	return $html;
}

/** [flattr], [flattr id="12"], [flattr url="https://..." title="..." size="compact"] */
function flattr_node_shortcode( $atts ) {
	$atts = shortcode_atts(
		array(
			'id'    => 0,
			'url'   => '',
			'title' => '',
			'size'  => flattr_node_settings()['size'],
		),
		$atts,
		'flattr'
	);
	$post     = get_post();
	$post_url = '' !== $atts['url'] ? esc_url_raw( $atts['url'], array( 'http', 'https' ) ) : ( $post ? get_permalink( $post ) : '' );
	$title    = '' !== $atts['title'] ? $atts['title'] : ( $post ? get_the_title( $post ) : '' );
	if ( '' === $post_url && ! absint( $atts['id'] ) ) {
		return '';
	}
	flattr_node_enqueue_script();
	return flattr_node_button( $post_url, $title, $atts['size'], absint( $atts['id'] ) );
}
add_shortcode( 'flattr', 'flattr_node_shortcode' );

/** The optional popup script, from the node itself. */
function flattr_node_enqueue_script() {
	$settings = flattr_node_settings();
	$node     = flattr_node_base();
	if ( $settings['script'] && '' !== $node ) {
		wp_enqueue_script( 'flattr-node-button', $node . '/button.js', array(), null, true );
	}
}

/** Append the button to every post (if enabled). */
function flattr_node_append( $content ) {
	$settings = flattr_node_settings();
	if ( ! $settings['append'] || ! is_singular( 'post' ) || ! in_the_loop() || ! is_main_query() ) {
		return $content;
	}
	if ( has_shortcode( $content, 'flattr' ) ) {
		return $content;
	}
	flattr_node_enqueue_script();
	$post = get_post();
	return $content . '<p class="flattr-node-wrap">' . flattr_node_button( get_permalink( $post ), get_the_title( $post ), $settings['size'] ) . '</p>';
}
add_filter( 'the_content', 'flattr_node_append' );

/** <link rel="payment"> in the head of single posts, in Flattr's form. */
function flattr_node_head() {
	if ( ! is_singular( 'post' ) ) {
		return;
	}
	$post = get_queried_object();
	$href = flattr_node_autosubmit_url( get_permalink( $post ), get_the_title( $post ) );
	if ( '' !== $href ) {
		printf( '<link rel="payment" type="text/html" href="%s" />' . "\n", esc_url( $href ) );
	}
}
add_action( 'wp_head', 'flattr_node_head' );

/** rel="payment" in RSS 2.0 items (WordPress declares xmlns:atom on the channel). */
function flattr_node_rss_item() {
	$href = flattr_node_autosubmit_url( get_permalink(), get_the_title_rss() );
	if ( '' !== $href ) {
		printf( "\t\t" . '<atom:link rel="payment" type="text/html" href="%s" />' . "\n", esc_url( $href ) );
	}
}
add_action( 'rss2_item', 'flattr_node_rss_item' );

/** rel="payment" in Atom entries. */
function flattr_node_atom_entry() {
	$href = flattr_node_autosubmit_url( get_permalink(), get_the_title_rss() );
	if ( '' !== $href ) {
		printf( "\t\t" . '<link rel="payment" type="text/html" href="%s" />' . "\n", esc_url( $href ) );
	}
}
add_action( 'atom_entry', 'flattr_node_atom_entry' );

/**
 * The node as a trusted oEmbed provider: pasting a thing page URL on its own
 * line embeds the button. Providers added with wp_oembed_add_provider() are
 * trusted, so WordPress keeps their markup as the node sends it.
 */
function flattr_node_oembed_provider() {
	$node = flattr_node_base();
	if ( '' === $node ) {
		return;
	}
	$pattern = '#^' . preg_quote( $node, '#' ) . '/(things/\d+|submit/auto\?.*)$#i';
	wp_oembed_add_provider( $pattern, $node . '/oembed', true );
}
add_action( 'init', 'flattr_node_oembed_provider' );

/** Register a post as a thing when it is published (needs an API token). */
function flattr_node_register_on_publish( $new_status, $old_status, $post ) {
	$settings = flattr_node_settings();
	$node     = flattr_node_base();
	if ( 'publish' !== $new_status || 'publish' === $old_status || 'post' !== $post->post_type ) {
		return;
	}
	if ( '' === $node || '' === $settings['token'] ) {
		return;
	}
	$response = wp_remote_post(
		$node . '/api/v1/things',
		array(
			'timeout' => 10,
			'headers' => array(
				'Authorization' => 'Bearer ' . $settings['token'],
				'Content-Type'  => 'application/json',
			),
			'body'    => wp_json_encode(
				array(
					'url'   => get_permalink( $post ),
					'title' => wp_strip_all_tags( get_the_title( $post ) ),
				)
			),
		)
	);
	if ( is_wp_error( $response ) ) {
		error_log( 'flattr-node: cannot register the post: ' . $response->get_error_message() );
		return;
	}
	$code = wp_remote_retrieve_response_code( $response );
	if ( 201 !== $code && 422 !== $code ) { // 422: already registered.
		error_log( 'flattr-node: the node answered ' . $code . ' when registering the post' );
	}
}
add_action( 'transition_post_status', 'flattr_node_register_on_publish', 10, 3 );

/** Settings > flattr-node. */
function flattr_node_sanitize( $input ) {
	$input = is_array( $input ) ? $input : array();
	return array(
		'node'     => esc_url_raw( isset( $input['node'] ) ? $input['node'] : '', array( 'http', 'https' ) ),
		'username' => sanitize_user( isset( $input['username'] ) ? $input['username'] : '', true ),
		'append'   => empty( $input['append'] ) ? 0 : 1,
		'size'     => ( isset( $input['size'] ) && 'compact' === $input['size'] ) ? 'compact' : 'default',
		'script'   => empty( $input['script'] ) ? 0 : 1,
		'token'    => sanitize_text_field( isset( $input['token'] ) ? $input['token'] : '' ),
	);
}

function flattr_node_admin_init() {
	register_setting( 'flattr_node', FLATTR_NODE_OPTION, array( 'sanitize_callback' => 'flattr_node_sanitize' ) );
}
add_action( 'admin_init', 'flattr_node_admin_init' );

function flattr_node_admin_menu() {
	add_options_page( 'flattr-node', 'flattr-node', 'manage_options', 'flattr-node', 'flattr_node_settings_page' );
}
add_action( 'admin_menu', 'flattr_node_admin_menu' );

function flattr_node_settings_page() {
	if ( ! current_user_can( 'manage_options' ) ) {
		return;
	}
	$s = flattr_node_settings();
	?>
	<div class="wrap">
		<h1><?php esc_html_e( 'flattr-node', 'flattr-node' ); ?></h1>
		<form method="post" action="options.php">
			<?php settings_fields( 'flattr_node' ); ?>
			<table class="form-table" role="presentation">
				<tr><th scope="row"><label for="fn-node"><?php esc_html_e( 'Node address', 'flattr-node' ); ?></label></th>
					<td><input id="fn-node" class="regular-text" type="url" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[node]" value="<?php echo esc_attr( $s['node'] ); ?>" placeholder="https://flattr.example.org"></td></tr>
				<tr><th scope="row"><label for="fn-user"><?php esc_html_e( 'Your username on the node', 'flattr-node' ); ?></label></th>
					<td><input id="fn-user" type="text" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[username]" value="<?php echo esc_attr( $s['username'] ); ?>"></td></tr>
				<tr><th scope="row"><?php esc_html_e( 'Button', 'flattr-node' ); ?></th>
					<td><label><input type="checkbox" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[append]" value="1" <?php checked( $s['append'], 1 ); ?>> <?php esc_html_e( 'Append the button to every post', 'flattr-node' ); ?></label><br>
					<label><input type="checkbox" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[script]" value="1" <?php checked( $s['script'], 1 ); ?>> <?php esc_html_e( 'Open the confirmation as a popup and update the count', 'flattr-node' ); ?></label><br>
					<select name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[size]">
						<option value="default" <?php selected( $s['size'], 'default' ); ?>><?php esc_html_e( 'Default', 'flattr-node' ); ?></option>
						<option value="compact" <?php selected( $s['size'], 'compact' ); ?>><?php esc_html_e( 'Compact', 'flattr-node' ); ?></option>
					</select></td></tr>
				<tr><th scope="row"><label for="fn-token"><?php esc_html_e( 'API token (optional)', 'flattr-node' ); ?></label></th>
					<td><input id="fn-token" class="regular-text" type="password" autocomplete="off" name="<?php echo esc_attr( FLATTR_NODE_OPTION ); ?>[token]" value="<?php echo esc_attr( $s['token'] ); ?>">
					<p class="description"><?php esc_html_e( 'With a token (flattr-node token create NAME), each post is registered as a thing when it is published.', 'flattr-node' ); ?></p></td></tr>
			</table>
			<?php submit_button(); ?>
		</form>
	</div>
	<?php
}
